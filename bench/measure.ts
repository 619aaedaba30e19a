/**
 * One run of each measurement. Every run checks that the rows really landed (a fast import that
 * failed every row would otherwise look like a good figure).
 */
import type { MedplumClient } from '@medplum/core';
import type { ImportOptions, ImportOutcome } from '../src/lib';
import { createLocalMedplum, csvFromText, defaultSettings, importCsv } from '../src/lib';
import { csvFromFile } from '../src/lib/csv/file';
import { nullMedplum } from './null-medplum';
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
