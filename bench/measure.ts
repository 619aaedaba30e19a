/**
 * One run of each measurement. Every run checks that the rows really landed (a fast import that
 * failed every row would otherwise look like a good figure).
 */
import type { MedplumClient } from '@medplum/core';
import type { ImportOptions, ImportOutcome } from '../src/lib';
import { csvFromText, defaultSettings, importCsv } from '../src/lib';
import { createLocalMedplum } from '../src/lib/local-medplum';
import { batchBody, encodeEntry, unitWrites } from '../src/lib/bundles/batch';
import { csvFromFile } from '../src/lib/csv/file';
import { loadProfile } from '../src/lib/profiles';
import { columnIndex, RowReader } from '../src/lib/tables/row-reader';
import type { WritingUnit } from '../src/lib/tables/types';
import { batchAnswerer, nullMedplum } from './null-medplum';
import { upsertPerRow } from './per-row';

export interface RunSample {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** Requests the server received, when countable. */
  requests?: number;
  /** Largest request body, in bytes, when measured. */
  maxBodyBytes?: number;
  /** Time the null server spent answering (in this process, so not the importer's own). */
  serverSeconds?: number;
}

function sample(rows: number, seconds: number, extra: Partial<RunSample> = {}): RunSample {
  return { rows, seconds, rowsPerSecond: rows / seconds, ...extra };
}

function elapsed(start: number): number {
  return (performance.now() - start) / 1000;
}

function expectCreated(outcome: ImportOutcome, rows: number, what: string): void {
  const { report } = outcome;
  if (report.rows !== rows || report.created !== rows) {
    const first = report.errors[0]?.message ?? 'no error listed';
    throw new Error(`${what}: expected ${rows} rows created, got ${report.created} of ${report.rows} (${first})`);
  }
}

/** Parse only: every record of an in-memory document, nothing else. */
export async function parseText(text: string, rows: number): Promise<RunSample> {
  const start = performance.now();
  let records = 0;
  for await (const _record of csvFromText('patients.csv', text).records()) {
    records++;
  }
  const seconds = elapsed(start);
  if (records !== rows + 1) {
    throw new Error(`parse: expected ${rows + 1} records, got ${records}`);
  }
  return sample(rows, seconds);
}

/** Parse only, streamed from disk (the path the command line and the 1M-row figure use). */
export async function parseFile(path: string, rows: number): Promise<RunSample> {
  const start = performance.now();
  let records = 0;
  for await (const _record of (await csvFromFile(path)).records()) {
    records++;
  }
  const seconds = elapsed(start);
  if (records !== rows + 1) {
    throw new Error(`parse file: expected ${rows + 1} records, got ${records}`);
  }
  return sample(rows, seconds);
}

/** The whole importCsv call (structure check included) into a server that answers at once. */
export async function pipelineNull(text: string, rows: number): Promise<RunSample> {
  const { medplum, stats } = nullMedplum();
  const start = performance.now();
  const outcome = await importCsv(medplum, csvFromText('patients.csv', text));
  const seconds = elapsed(start);
  expectCreated(outcome, rows, 'pipeline');
  return sample(rows, seconds, { requests: stats.requests, maxBodyBytes: stats.bodyBytesMax, serverSeconds: stats.serverSeconds });
}

/** Diagnostic: parse, check, validate, map and serialise every row; nothing sent (dry run). */
export async function dryRun(text: string, rows: number): Promise<RunSample> {
  const { medplum } = nullMedplum();
  const start = performance.now();
  const { report } = await importCsv(medplum, csvFromText('patients.csv', text), { dryRun: true });
  const seconds = elapsed(start);
  if (report.skipped !== rows) {
    throw new Error(`dry run: expected ${rows} rows skipped as dry run, got ${report.skipped}`);
  }
  return sample(rows, seconds);
}

export interface LocalRunOptions {
  latencyMs?: number;
  batchSize?: number;
}

/** Our importer into a fresh local Medplum (validation, token index, batches), end to end. */
export async function importLocal(text: string, rows: number, options: LocalRunOptions = {}): Promise<RunSample> {
  const medplum = createLocalMedplum({ latencyMs: options.latencyMs ?? 0, maxRetries: 0 });
  const importOptions: ImportOptions = {
    settings: { ...defaultSettings(), batchSize: options.batchSize ?? defaultSettings().batchSize },
  };
  const start = performance.now();
  const outcome = await importCsv(medplum, csvFromText('patients.csv', text), importOptions);
  const seconds = elapsed(start);
  expectCreated(outcome, rows, 'local import');
  checkStored(medplum, rows);
  return sample(rows, seconds, { requests: medplum.stats.requests });
}

/** One upsertResource per row into a fresh local Medplum. */
export async function perRowLocal(text: string, rows: number, options: LocalRunOptions = {}): Promise<RunSample> {
  const medplum = createLocalMedplum({ latencyMs: options.latencyMs ?? 0, maxRetries: 0 });
  const start = performance.now();
  const written = await upsertPerRow(medplum, text);
  const seconds = elapsed(start);
  if (written !== rows) {
    throw new Error(`per-row: expected ${rows} rows, wrote ${written}`);
  }
  checkStored(medplum, rows);
  return sample(rows, seconds, { requests: medplum.stats.requests });
}

function checkStored(medplum: MedplumClient & { allResources: (type: 'Patient') => unknown[] }, rows: number): void {
  const stored = medplum.allResources('Patient').length;
  if (stored !== rows) {
    throw new Error(`expected ${rows} Patients stored, found ${stored}`);
  }
}

/**
 * JSON work that no importer writing FHIR to Medplum can skip, each timed alone on rows mapped
 * beforehand: serialising and UTF-8-encoding every row's batch entry (the importer's own planRow),
 * and decoding the server's answer (UTF-8 then JSON, as the client does). The answer is the null
 * server's, shaped as Medplum's (an OperationOutcome per entry, each resource echoed). Together
 * with parsing, this is the fastest a pipeline can go before validating, mapping, batching or
 * classifying anything.
 */
export interface JsonFloor {
  serialise: RunSample;
  decode: RunSample;
}

/** Rows of a patients document mapped to their write units (untimed preparation for jsonFloor). */
export async function mappedUnits(text: string): Promise<WritingUnit[]> {
  const records: string[][] = [];
  for await (const record of csvFromText('patients.csv', text).records()) {
    records.push(record.fields);
  }
  const [header, ...rows] = records;
  const patientsTable = loadProfile('guide').tables.find((t) => t.name === 'patients');
  if (patientsTable?.kind !== 'rows') {
    throw new Error('the guide profile has no patients table');
  }
  const columns = columnIndex(header, patientsTable.columns);
  const context = { settings: defaultSettings(), lookups: undefined, now: new Date(), newUuid: () => 'unused' };
  return rows.map((fields, i) => {
    const reader = new RowReader(i + 2, fields, columns, fields[0]);
    const unit = patientsTable.mapRow(reader, context);
    if (!reader.ok || unit.kind === 'skip') {
      throw new Error(`json floor: row ${i + 2} does not map: ${reader.problems[0]?.message}`);
    }
    return unit;
  });
}

export function jsonFloor(units: readonly WritingUnit[], batchSize: number): JsonFloor {
  // A batch at a time, as the importer goes: holding every planned row at once would make the
  // garbage collector, not the JSON, the measured cost.
  const answer = batchAnswerer();
  const utf8 = new TextEncoder();
  const decoder = new TextDecoder();
  const answers: Uint8Array[] = [];
  let serialiseSeconds = 0;
  for (let i = 0; i < units.length; i += batchSize) {
    const start = performance.now();
    const entries = units.slice(i, i + batchSize).flatMap((unit) =>
      unitWrites(unit).map((w) => encodeEntry({ request: { method: 'POST', url: w.resource.resourceType }, resource: w.resource }))
    );
    serialiseSeconds += elapsed(start);
    // The answer to this batch, made untimed: what the client receives.
    const body = batchBody(entries);
    answers.push(utf8.encode(JSON.stringify(answer(JSON.parse(decoder.decode(body))))));
  }
  const start = performance.now();
  let entries = 0;
  for (const bytes of answers) {
    entries += (JSON.parse(decoder.decode(bytes)) as { entry: unknown[] }).entry.length;
  }
  const decodeSeconds = elapsed(start);
  const expectedEntries = units.reduce((n, unit) => n + unitWrites(unit).length, 0);
  if (entries !== expectedEntries) {
    throw new Error(`json floor: decoded ${entries} answer entries, expected ${expectedEntries}`);
  }
  return { serialise: sample(units.length, serialiseSeconds), decode: sample(units.length, decodeSeconds) };
}
