/**
 * Benchmark input: seeded patients CSV in the same shape as test/helpers/generate.ts patientsCsv
 * (patient_id,first_name,last_name,birth_date,gender), but written line by line so that a
 * million-row file never sits in memory.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mulberry32 } from '../test/helpers/generate';

export const PATIENT_HEADER = 'patient_id,first_name,last_name,birth_date,gender';

const GIVEN = ['Ana', 'Ben', 'Chloé', 'Dmitri', 'Eun-ji', 'Farah', 'Goran', 'Hiroshi', 'Ines', 'Jamal', '李', 'Zoë'];
const FAMILY = ['Nguyen', 'Smith', 'García', 'Müller', 'Okafor', 'Kowalski', 'Haddad', 'Ivanova', 'Tanaka', "O'Brien"];
const GENDER = ['M', 'F', 'O', 'U'];
const DAY_MS = 86_400_000;
const FROM = Date.UTC(1930, 0, 1);

/** Data lines (no header) for `count` patients with ids `${prefix}0000001`...; deterministic per seed. */
export function* patientLines(count: number, seed = 1, prefix = 'B'): Generator<string> {
  const random = mulberry32(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  for (let i = 1; i <= count; i++) {
    const birth = new Date(FROM + Math.floor(random() * 90 * 365) * DAY_MS).toISOString().slice(0, 10);
    yield `${prefix}${String(i).padStart(7, '0')},${pick(GIVEN)},"${pick(FAMILY)}",${birth},${pick(GENDER)}`;
  }
}

/** The whole file as one string (for in-memory documents: csvFromText). */
export function patientsText(count: number, seed = 1, prefix = 'B'): string {
  return [PATIENT_HEADER, ...patientLines(count, seed, prefix)].join('\n') + '\n';
}

/**
 * Streams `count` rows to `path` (honouring back-pressure), through a temporary name so that an
 * interrupted run never leaves a truncated file that a later run would reuse. Reuses an existing file.
 */
export async function ensurePatientsFile(path: string, count: number, seed = 1): Promise<{ bytes: number; reused: boolean }> {
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isFile()) {
    return { bytes: existing.size, reused: true };
  }
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.partial`;
  const out = createWriteStream(partial);
  const flushEvery = 5_000;
  let chunk: string[] = [PATIENT_HEADER];
  for (const line of patientLines(count, seed)) {
    chunk.push(line);
    if (chunk.length >= flushEvery) {
      if (!out.write(chunk.join('\n') + '\n')) {
        await once(out, 'drain');
      }
      chunk = [];
    }
  }
  out.end(chunk.length ? chunk.join('\n') + '\n' : '');
  await once(out, 'finish');
  await rename(partial, path);
  return { bytes: (await stat(path)).size, reused: false };
}
