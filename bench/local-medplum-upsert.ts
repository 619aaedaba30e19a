/**
 * Measures importing Patients by conditional PUT (`PUT Patient?identifier=sys|val`) in batch
 * Bundles through MedplumClient.executeBatch: on LocalMedplum (token index) and, for comparison,
 * on a plain MockClient with the same definitions indexed (full scan per lookup: quadratic).
 *
 *   npx tsx bench/local-medplum-upsert.ts [--rows=100000] [--batch=500] [--mock-rows=5000]
 *
 * Figures are recorded in docs/local-medplum.md.
 */
import type { MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Patient } from '@medplum/fhirtypes';
import { MockClient } from '@medplum/mock';
import { createLocalMedplum } from '../src/lib/local-medplum';
import { ensureDefinitionsIndexed } from '../src/lib/local-medplum/definitions';

const SYSTEM = 'https://example.org/patient-id';

function arg(name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
}

function patientBundle(start: number, size: number, total: number, family: string): Bundle {
  const entry: BundleEntry[] = [];
  for (let i = start; i < Math.min(start + size, total); i++) {
    const value = 'P' + String(i + 1).padStart(6, '0');
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [{ system: SYSTEM, value }],
      name: [{ family, given: ['Row' + (i + 1)] }],
      birthDate: '1980-01-01',
    };
    entry.push({ request: { method: 'PUT', url: `Patient?identifier=${SYSTEM}|${value}` }, resource: patient });
  }
  return { resourceType: 'Bundle', type: 'batch', entry };
}

interface RunResult {
  readonly seconds: number;
  readonly batchSeconds: number[];
  readonly statuses: Record<string, number>;
}

async function importRows(medplum: MedplumClient, rows: number, batch: number, family: string): Promise<RunResult> {
  const statuses: Record<string, number> = {};
  const batchSeconds: number[] = [];
  const start = performance.now();
  for (let offset = 0; offset < rows; offset += batch) {
    const t0 = performance.now();
    const response = await medplum.executeBatch(patientBundle(offset, batch, rows, family));
    batchSeconds.push((performance.now() - t0) / 1000);
    for (const e of response.entry ?? []) {
      const status = e.response?.status ?? '?';
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  }
  return { seconds: (performance.now() - start) / 1000, batchSeconds, statuses };
}

/** Fits per-batch time = a + b * batchIndex and sums it over `batches` batches. */
function extrapolate(batchSeconds: number[], batches: number): number {
  const n = batchSeconds.length;
  const meanX = (n - 1) / 2;
  const meanY = batchSeconds.reduce((s, y) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  batchSeconds.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  const b = den ? num / den : 0;
  const a = meanY - b * meanX;
  let total = 0;
  for (let k = 0; k < batches; k++) {
    total += a + b * k;
  }
  return total;
}

function fmt(seconds: number): string {
  return seconds.toFixed(1) + ' s';
}

async function main(): Promise<void> {
  const rows = arg('rows', 100_000);
  const batch = arg('batch', 500);
  const mockRows = arg('mock-rows', 5_000);

  let t0 = performance.now();
  ensureDefinitionsIndexed();
  console.log(`definitions indexed in ${fmt((performance.now() - t0) / 1000)}`);

  const local = createLocalMedplum({ maxRetries: 0 });
  const first = await importRows(local, rows, batch, 'First');
  const stored = local.allResources('Patient').length;
  console.log(
    `LocalMedplum: ${rows} new rows in ${fmt(first.seconds)} (${Math.round(rows / first.seconds)} rows/s), ` +
      `statuses ${JSON.stringify(first.statuses)}, stored ${stored}, ` +
      `first batch ${fmt(first.batchSeconds[0])}, last batch ${fmt(first.batchSeconds.at(-1) ?? 0)}`
  );
  const same = await importRows(local, rows, batch, 'First');
  console.log(
    `LocalMedplum: same ${rows} rows again (unchanged) in ${fmt(same.seconds)}, statuses ${JSON.stringify(same.statuses)}`
  );
  const changed = await importRows(local, rows, batch, 'Second');
  console.log(
    `LocalMedplum: ${rows} rows changed in ${fmt(changed.seconds)}, statuses ${JSON.stringify(changed.statuses)}, ` +
      `stats ${JSON.stringify(local.stats)}`
  );

  t0 = performance.now();
  const mock = new MockClient();
  const mockRun = await importRows(mock, mockRows, batch, 'First');
  const mockStored = (await mock.searchResources('Patient', { identifier: `${SYSTEM}|P000001` })).length;
  const projected = extrapolate(mockRun.batchSeconds, Math.ceil(rows / batch));
  console.log(
    `MockClient: ${mockRows} new rows in ${fmt(mockRun.seconds)}, statuses ${JSON.stringify(mockRun.statuses)}, ` +
      `matches for P000001: ${mockStored}, first batch ${fmt(mockRun.batchSeconds[0])}, ` +
      `last batch ${fmt(mockRun.batchSeconds.at(-1) ?? 0)}; projected for ${rows} rows: ~${fmt(projected)} ` +
      `(~${(projected / 60).toFixed(0)} min)`
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
