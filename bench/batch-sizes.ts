/**
 * The batch-size sweep. Speed alone would pick the largest size; what decides a default is also
 * the request body (the server refuses JSON over 1 MB) and the server's write quota, so each size
 * gets all three.
 */
import { csvFromText, defaultSettings, importCsv } from '../src/lib';
import { createLocalMedplum } from '../src/lib/local-medplum';
import { encountersCsv } from '../test/helpers/generate';
import { patientsText } from './generate';
import { importLocal } from './measure';
import { nullMedplum } from './null-medplum';
import type { BatchSizeRow, Results } from './report';
import { median, timed } from './stats';

export const BATCH_SIZES = [50, 100, 250, 500, 1000];

/** The server's default FHIR quota: 50,000 points a minute per user (a new row by conditional PUT in a batch costs 140). */
const QUOTA_POINTS_PER_MINUTE = 50_000;

export interface SweepSizes {
  rows: number;
  quotaRows: number;
  encounterRows: number;
  latencyMs: number;
}

export async function measureBatchSizes(sizes: SweepSizes, runs: number): Promise<NonNullable<Results['batchSizes']>> {
  const input = patientsText(sizes.rows, 11, 'S');
  const quotaInput = patientsText(sizes.quotaRows, 13, 'Q');
  // Encounters with notes (two resources in one nested transaction) are the widest built-in rows.
  const encounterInput = encountersCsv(sizes.encounterRows, ['G0000001', 'G0000002']);
  const table: BatchSizeRow[] = [];
  for (const batchSize of BATCH_SIZES) {
    const samples = await timed(`batch size ${batchSize}, ${sizes.latencyMs} ms`, runs, () =>
      importLocal(input, sizes.rows, { latencyMs: sizes.latencyMs, batchSize })
    );
    table.push({
      batchSize,
      rowsPerSecond: median(samples.map((s) => s.rowsPerSecond)),
      runs: samples.map((s) => s.rowsPerSecond),
      requests: samples[0].requests ?? 0,
      patientBodyBytes: await largestBody(input, batchSize),
      encounterBodyBytes: await largestBody(encounterInput, batchSize, ['Patient']),
      quotaMinutes: await quotaMinutes(quotaInput, sizes.quotaRows, batchSize),
    });
  }
  const fastest = table.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a)).batchSize;
  return { rows: sizes.rows, latencyMs: sizes.latencyMs, quotaRows: sizes.quotaRows, fastest, table };
}

/**
 * The largest request body the importer sends for this file at this batch size (null server;
 * `stored`: the types it finds, such as the Patients encounters refer to). Every row must be
 * written, or the body would be measured without them.
 */
async function largestBody(text: string, batchSize: number, stored: readonly string[] = []): Promise<number> {
  const { medplum, stats } = nullMedplum({ stored });
  const { report } = await importCsv(medplum, csvFromText('bodies.csv', text), { settings: { ...defaultSettings(), batchSize } });
  if (report.created !== report.rows) {
    throw new Error(`body run at batch size ${batchSize}: ${report.created} of ${report.rows} created (${report.errors[0]?.message ?? 'no error listed'})`);
  }
  return stats.bodyBytesMax;
}

/** Simulated minutes to import under the quota: waits advance a fake clock the server's quota window reads. */
async function quotaMinutes(text: string, rows: number, batchSize: number): Promise<number> {
  let time = 0;
  const clock = { now: () => time, sleep: async (ms: number) => void (time += Math.max(0, ms)) };
  const medplum = createLocalMedplum({ maxRetries: 0, clock, fhirQuota: QUOTA_POINTS_PER_MINUTE });
  const { report } = await importCsv(medplum, csvFromText('quota.csv', text), {
    settings: { ...defaultSettings(), batchSize },
    executor: { clock },
  });
  if (report.created !== rows) {
    throw new Error(`quota run at batch size ${batchSize}: ${report.created} of ${rows} created`);
  }
  return time / 60_000;
}
