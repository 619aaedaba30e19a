import { describe, expect, it } from 'vitest';
import { csvFromText, importCsv, resolveSettings } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { encountersCsv, mulberry32, patientsCsv } from '../helpers/generate';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';
import { canonicalState } from '../helpers/state';

// The example data plus generated files: 2,000 encounters (two in three with a note, so nested
// transactions) over 2,000 generated patients.
const FILES: [string, string][] = [
  ...GUIDE_FILES.map((f): [string, string] => [f, guideCsv(f)]),
  ['generated_patients.csv', patientsCsv(2000, 7)],
  ['generated_encounters.csv', encountersCsv(2000, ['P001', 'P002', 'G0000001', 'G0001999'], 8)],
];

const totals = { retries: 0, rateLimitWaits: 0 };

async function importAll(medplum: LocalMedplum, clock?: { now: number }): Promise<ImportReport[]> {
  const reports = [];
  const random = mulberry32(99);
  for (const [name, text] of FILES) {
    const { report, stats } = await importCsv(medplum, csvFromText(name, text), {
      // Small batches under faults: more requests, so more of them fail and are retried.
      settings: resolveSettings({ batchSize: clock ? 50 : 500 }),
      executor: clock
        ? {
            random,
            // Simulated time: waiting advances the clock the server's quota window reads.
            clock: {
              now: () => clock.now,
              sleep: async (ms) => {
                clock.now += ms;
              },
            },
          }
        : undefined,
    });
    reports.push(report);
    totals.retries += stats.retries;
    totals.rateLimitWaits += stats.rateLimitWaits;
  }
  return reports;
}

describe('rate limits and faults', () => {
  it('a write quota and 10% server and network failures end in exactly the state of a clean run', async () => {
    const clean = createLocalMedplum();
    const cleanReports = await importAll(clean);
    expect(cleanReports.map((r) => r.failed)).toEqual([0, 0, 0, 0, 0, 0]);

    totals.retries = totals.rateLimitWaits = 0;
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const faulty = createLocalMedplum({
      maxRetries: 0,
      faults: {
        seed: 42,
        writeQuotaPerMinute: 500,
        serverErrorRate: 0.04,
        networkErrorRate: 0.03,
        networkErrorAfterWriteRate: 0.03,
        now: () => clock.now,
      },
    });
    const reports = await importAll(faulty, clock);

    for (const [i, report] of reports.entries()) {
      const accounted = report.created + report.updated + report.unchanged + report.failed + report.skipped;
      expect(accounted, report.file).toBe(report.rows);
      expect(report.rows, report.file).toBe(cleanReports[i].rows);
      expect(report.failed, `${report.file}: ${JSON.stringify(report.errors.slice(0, 3))}`).toBe(0);
    }
    expect(canonicalState(faulty)).toEqual(canonicalState(clean));
    // The faults really happened and were retried or waited out.
    expect(totals.retries).toBeGreaterThanOrEqual(5);
    expect(totals.rateLimitWaits).toBeGreaterThan(5);
    // The quota was really in force: 4,000+ writes at 500 a minute take several simulated minutes.
    expect(clock.now - Date.parse('2026-01-01T00:00:00Z')).toBeGreaterThan(5 * 60_000);
  });

  it('never retries a validation error, and reports it on its row', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const csv = 'patient_id,first_name,last_name,birth_date,gender\nP1,A,B,1990-01-01,M\nP2,Bad\u0007Name,C,1990-01-01,F\n';
    const { report, stats } = await importCsv(medplum, csvFromText('p.csv', csv));
    expect(report).toMatchObject({ created: 1, failed: 1 });
    expect(report.errors[0]).toMatchObject({ row: 3, sourceId: 'P2' });
    expect(stats.retries).toBe(0);
    expect(medplum.stats.requests).toBe(1);
  });
});
