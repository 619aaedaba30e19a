import type { Bot, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { csvFromText, importCsv, resolveSettings } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import type { FaultOptions, LocalMedplum } from '../../src/lib/local-medplum';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { runSchedule } from '../helpers/bot-schedule';
import type { FakeClock } from '../helpers/clock';
import { createFakeClock } from '../helpers/clock';
import { encountersCsv, mulberry32, patientsCsv } from '../helpers/generate';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';
import { canonicalState } from '../helpers/state';
import { importTasks, uploadCsv } from '../helpers/uploads';

// The example data plus generated files: 2,000 encounters (two in three with a note, so nested
// transactions) over 2,000 generated patients.
const FILES: [string, string][] = [
  ...GUIDE_FILES.map((f): [string, string] => [f, guideCsv(f)]),
  ['generated_patients.csv', patientsCsv(2000, 7)],
  ['generated_encounters.csv', encountersCsv(2000, ['P001', 'P002', 'G0000001', 'G0001999'], 8)],
];

/**
 * What the real server and the network in front of it were seen to answer, on a quarter of all
 * requests: 500 and 503 (outcome code `transient`, which getStatus reads as 400), a gateway's
 * 502/504 HTML page, 409 "could not serialize access" on writes, connections reset before and
 * after the server processed the request, and 429 from another client spending the quota.
 */
const FAULT_MIX: FaultOptions = {
  seed: 42,
  serverErrorRate: 0.05,
  gatewayErrorRate: 0.05,
  rateLimitRate: 0.05,
  networkErrorRate: 0.04,
  networkErrorAfterWriteRate: 0.03,
  conflictRate: 0.03,
};

async function importAll(medplum: LocalMedplum, clock?: FakeClock): Promise<ImportReport[]> {
  const reports = [];
  const random = mulberry32(99);
  for (const [name, text] of FILES) {
    const { report } = await importCsv(medplum, csvFromText(name, text), {
      // Small batches under faults: more requests, so more of them fail and are retried.
      settings: resolveSettings({ batchSize: clock ? 50 : 500 }),
      executor: clock ? { random, clock } : undefined,
    });
    reports.push(report);
  }
  return reports;
}

describe('faults: the importer ends in the state of a clean run', () => {
  it('through the engine, with a quarter of all requests failing and the default quota', async () => {
    const clean = createLocalMedplum();
    const cleanReports = await importAll(clean);
    expect(cleanReports.map((r) => r.failed)).toEqual([0, 0, 0, 0, 0, 0]);

    const clock = createFakeClock();
    const faulty = createLocalMedplum({ maxRetries: 0, clock, fhirQuota: 50_000, faults: FAULT_MIX });
    const started = clock.now();
    const reports = await importAll(faulty, clock);

    for (const [i, report] of reports.entries()) {
      const accounted = report.created + report.updated + report.unchanged + report.failed + report.skipped;
      expect(accounted, report.file).toBe(report.rows);
      expect(report.rows, report.file).toBe(cleanReports[i].rows);
      expect(report.failed, `${report.file}: ${JSON.stringify(report.errors.slice(0, 3))}`).toBe(0);
    }
    expect(canonicalState(faulty)).toEqual(canonicalState(clean));
    // The faults really happened, and the quota was in force: 4,000+ writes at 140 points take minutes.
    expect(faulty.stats.requests).toBeGreaterThan(faulty.stats.writes / 50);
    expect(clock.now() - started).toBeGreaterThan(10 * 60_000);
  }, 120_000);

  it('through the built bot: every upload completes, and no invocation runs past its budget plus one request', async () => {
    const clean = createLocalMedplum();
    await importAll(clean);

    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 20, perEntryMs: 3 } });
    const bot = (await medplum.createResource<Bot>({ resourceType: 'Bot', name: 'import-csv', timeout: 10 })) as Bot & {
      id: string;
    };
    for (const [name, text] of FILES) {
      await uploadCsv(medplum, name, text);
    }
    medplum.setFhirQuota(50_000);
    medplum.setFaults(FAULT_MIX);
    const invocations = await runSchedule(
      { medplum, clock, bot, cronMinutes: 1, secrets: { TIME_BUDGET_SECONDS: '6', PARENT_WAIT_MINUTES: '2' } },
      undefined,
      () => importTasks(medplum).length === FILES.length && importTasks(medplum).every((t) => t.status === 'completed')
    );
    medplum.setFaults(undefined);

    const tasks = importTasks(medplum);
    expect(tasks.map((t) => t.status)).toEqual(FILES.map(() => 'completed'));
    const reports = tasks.map((t: Task) => JSON.parse(t.output?.find((o) => o.type.text === 'report')?.valueString ?? '{}') as ImportReport);
    expect(reports.map((r) => r.failed)).toEqual(FILES.map(() => 0));
    expect(canonicalState(medplum)).toEqual(canonicalState(clean));
    // Budget 6 s; one request is at most 20 ms + 50 entries x 3 ms here.
    for (const invocation of invocations) {
      expect(invocation.end - invocation.start, `${invocation.kind} run at ${invocation.start}`).toBeLessThanOrEqual(6000 + 1000);
    }
  }, 300_000);
});
