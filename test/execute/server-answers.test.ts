// Issue 9, "transient server answers" and "waiting ignores the time budget": every failed request is
// judged by its HTTP status, every wait ends before the invocation's deadline, and a failed
// progress save is not a lost claim. Through the built bot where a bot is involved.
import { MedplumClient, OperationOutcomeError } from '@medplum/core';
import type { Bundle, BundleEntry, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { csvFromText, importCsv } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { linkTo, statusOf } from '../../src/lib/execute/server-link';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { binaryAttachment, botRun, documentWith, interceptServer, jobResult } from '../helpers/bot-events';
import { createFakeClock } from '../helpers/clock';
import { patientsCsv } from '../helpers/generate';
import { guideCsv } from '../helpers/guide';
import { importTasks } from '../helpers/uploads';

const GATEWAY_PAGE = '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>';

const transient = (): Response =>
  new Response(
    JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', details: { text: 'Service unavailable' } }] }),
    { status: 503, headers: { 'content-type': 'application/fhir+json' } }
  );
const gateway = (status: number): Response => new Response(GATEWAY_PAGE, { status, headers: { 'content-type': 'text/html' } });

const isBatch = (url: string, init?: RequestInit): boolean => init?.method === 'POST' && /\/fhir\/R4\/?$/.test(url);

describe('failed requests are judged by their HTTP status', () => {
  it('statusOf reads the status the server sent, not what getStatus makes of the outcome', async () => {
    const answers = [transient(), gateway(502), gateway(504), new Response('', { status: 500 })];
    const medplum = new MedplumClient({ baseUrl: 'https://medplum.example/', fetch: async () => answers.shift() as Response });
    linkTo(medplum);
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const err = await medplum.get('fhir/R4/Patient', { maxRetries: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OperationOutcomeError);
      statuses.push(statusOf(err));
      // The gateway's page is described, never quoted.
      expect((err as Error).message).not.toContain('<html>');
    }
    expect(statuses).toEqual([503, 502, 504, 500]);
  });

  it('a 503 with a "transient" outcome, a 502 and a 504 page: the batch is sent again and no row fails', async () => {
    const medplum = createLocalMedplum();
    const failures = [transient, () => gateway(502), () => gateway(504)];
    let batches = 0;
    interceptServer(medplum, async (url, init, next) => {
      if (isBatch(url, init) && batches++ < failures.length) {
        return failures[batches - 1]();
      }
      return next();
    });
    const { result } = await botRun(medplum, { csv: guideCsv('patients.csv') }, { contentType: 'application/json' });
    expect(result).toMatchObject({ rows: 2, created: 2, failed: 0 });
    expect(batches).toBe(4);
  });

  it('other 4xx answers are final: the rows fail at once, with the reason', async () => {
    const medplum = createLocalMedplum();
    let batches = 0;
    interceptServer(medplum, async (url, init, next) => {
      if (isBatch(url, init)) {
        batches++;
        return new Response(
          JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden', details: { text: 'Forbidden' } }] }),
          { status: 403, headers: { 'content-type': 'application/fhir+json' } }
        );
      }
      return next();
    });
    const { result } = await botRun(medplum, { csv: guideCsv('patients.csv') }, { contentType: 'application/json' });
    expect(result).toMatchObject({ rows: 2, failed: 2 });
    expect((result as ImportReport).errors[0].message).toBe('not written: request failed (403): Forbidden');
    expect(batches).toBe(1);
  });
});

describe('concurrent writers', () => {
  it('two uploads imported at once: the entries the server could not serialise (409) are sent again, and no row fails', async () => {
    const medplum = createLocalMedplum({ latencyMs: 2 });
    let conflicts = 0;
    interceptServer(medplum, async (url, init, next) => {
      const response = await next();
      if (isBatch(url, init)) {
        const bundle = (await response.clone().json()) as Bundle;
        conflicts += (bundle.entry ?? []).filter((e: BundleEntry) => e.response?.status?.startsWith('409')).length;
      }
      return response;
    });
    const docs = [];
    for (const [i, prefix] of ['A', 'B'].entries()) {
      docs.push(await documentWith(medplum, [await binaryAttachment(medplum, patientsCsv(3000, 30 + i, prefix), { contentType: 'text/csv', title: `${prefix}.csv` })]));
    }
    const results = await Promise.all(docs.map((doc) => botRun(medplum, doc, { secrets: { TIME_BUDGET_SECONDS: '120' } })));
    expect(results.map((r) => jobResult(r.result).outcome)).toEqual(['completed', 'completed']);
    expect(results.map((r) => jobResult(r.result).report?.failed)).toEqual([0, 0]);
    expect(medplum.allResources('Patient')).toHaveLength(6000);
    expect(conflicts, 'the server answered 409 to some entries').toBeGreaterThan(0);
  }, 120_000);
});

describe('every wait ends before the deadline', () => {
  async function slowServer(options: { rateLimitRate?: number; perRequestMs?: number }): Promise<{ medplum: LocalMedplum; clock: ReturnType<typeof createFakeClock> }> {
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: options.perRequestMs ?? 20, perEntryMs: 3 } });
    return { medplum, clock };
  }

  it('under a 429 storm every run ends within its budget plus one request, calls nothing taken over, and loses nothing', async () => {
    const { medplum, clock } = await slowServer({});
    const doc = await documentWith(medplum, [await binaryAttachment(medplum, patientsCsv(2000, 5), { contentType: 'text/csv', title: 'storm.csv' })]);
    // A third of all answers: 429 from another client of the same user, the reset up to a minute away.
    medplum.setFaults({ seed: 3, rateLimitRate: 0.3 });
    const outcomes: string[] = [];
    const runOnce = async (input: unknown): Promise<void> => {
      const start = clock.now();
      const { result } = await botRun(medplum, input, { clock, secrets: { TIME_BUDGET_SECONDS: '5' } });
      expect(clock.now() - start).toBeLessThanOrEqual(5000 + 1000);
      const jobs = 'jobs' in (result as object) ? (result as { jobs: { outcome: string }[] }).jobs : [jobResult(result)];
      outcomes.push(...jobs.map((j) => j.outcome));
      clock.advance(60_000); // the next cron tick
    };
    await runOnce(doc);
    for (let run = 0; run < 12; run++) {
      await runOnce({ sweep: true });
    }
    expect(outcomes).not.toContain('busy');
    expect(outcomes).not.toContain('failed');
    // The storm passes: the import finishes where it stood, every row counted once.
    medplum.setFaults(undefined);
    for (let run = 0; run < 5 && importTasks(medplum)[0]?.status !== 'completed'; run++) {
      await runOnce({ sweep: true });
    }
    const [task] = importTasks(medplum);
    expect(task.status).toBe('completed');
    expect(JSON.parse(task.output?.find((o) => o.type.text === 'report')?.valueString ?? '{}')).toMatchObject({
      rows: 2000,
      created: 2000,
      failed: 0,
    });
    expect(medplum.allResources('Patient')).toHaveLength(2000);
  }, 120_000);

  it('sweeps over a slow server (1.5 s an answer) stay within their budget, and download a file only to run it', async () => {
    const { medplum, clock } = await slowServer({ perRequestMs: 1500 });
    for (const file of ['a', 'b', 'c', 'd']) {
      await documentWith(medplum, [await binaryAttachment(medplum, patientsCsv(50, file.charCodeAt(0), file.toUpperCase()), { contentType: 'text/csv', title: `${file}.csv` })]);
    }
    let downloads = 0;
    interceptServer(medplum, (url, init, next) => {
      if ((init?.method ?? 'GET') === 'GET' && /\/Binary\/[^/?]+$/.test(url)) {
        downloads++;
      }
      return next();
    });
    const started: string[] = [];
    for (let run = 0; run < 20 && !(importTasks(medplum).length === 4 && importTasks(medplum).every((t) => t.status === 'completed')); run++) {
      const start = clock.now();
      // A run reads the pending uploads and the stored mappings, claims, downloads, looks up,
      // writes and saves: about ten answers, which need a budget of 20 s at 1.5 s an answer.
      const { result } = await botRun(medplum, { resourceType: 'Bot', id: 'import-csv', timeout: 30 }, { clock, secrets: { TIME_BUDGET_SECONDS: '20' } });
      expect(clock.now() - start, `run ${run}`).toBeLessThanOrEqual(20_000 + 1500);
      started.push(...(result as { jobs: { outcome: string }[] }).jobs.filter((j) => j.outcome !== 'busy').map((j) => j.outcome));
      clock.advance(60_000);
    }
    expect(importTasks(medplum).map((t) => t.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    // A file is downloaded only by a run that imports it (again when a run had to stop half-way;
    // not by one that stopped before reading it).
    expect(downloads).toBeGreaterThanOrEqual(4);
    expect(downloads).toBeLessThanOrEqual(started.length);
  });
});

describe('a failed progress save is retried, not taken for a lost claim', () => {
  async function importWithTaskFaults(fault: (nth: number) => 'ok' | 'fail-before' | 'lose-answer'): Promise<{ result: unknown; task: Task }> {
    const medplum = createLocalMedplum();
    const doc = await documentWith(medplum, [await binaryAttachment(medplum, patientsCsv(1200, 9), { contentType: 'text/csv', title: 'p.csv' })]);
    let saves = 0;
    interceptServer(medplum, async (url, init, next) => {
      if (init?.method === 'PUT' && /\/Task\//.test(url)) {
        const what = fault(++saves);
        if (what === 'fail-before') {
          return transient();
        }
        if (what === 'lose-answer') {
          await next();
          throw new TypeError('fetch failed');
        }
      }
      return next();
    });
    const { result } = await botRun(medplum, doc, { secrets: { TIME_BUDGET_SECONDS: '60' } });
    return { result, task: importTasks(medplum)[0] };
  }

  it('a 503 on a progress save', async () => {
    const { result, task } = await importWithTaskFaults((nth) => (nth === 2 ? 'fail-before' : 'ok'));
    expect(jobResult(result)).toMatchObject({ outcome: 'completed', report: { created: 1200 } });
    expect(task.status).toBe('completed');
  });

  it('a progress save that landed but whose answer was lost (the retry then sees the new version)', async () => {
    const { result, task } = await importWithTaskFaults((nth) => (nth === 2 || nth === 3 ? 'lose-answer' : 'ok'));
    expect(jobResult(result)).toMatchObject({ outcome: 'completed', report: { created: 1200 } });
    expect(task.status).toBe('completed');
  });
});

describe('the plan looks rows up within the server limits, and writes only what changed', () => {
  const longIds = (n: number): string =>
    ['patient_id,first_name,last_name,birth_date,gender', ...Array.from({ length: n }, (_, i) => `${'X'.repeat(130)}-${String(i).padStart(6, '0')},A,B,1990-01-01,F`)].join('\n');

  it('500 rows with 137-character ids: the lookups are split under the query limit, and a re-run writes nothing', async () => {
    const medplum = createLocalMedplum();
    const lookups: string[] = [];
    let batches = 0;
    interceptServer(medplum, async (url, init, next) => {
      if (init?.method === 'POST' && url.endsWith('/Patient/_search')) {
        lookups.push(String(init.body));
      }
      if (isBatch(url, init)) {
        batches++;
      }
      return next();
    });
    const csv = longIds(500);
    const first = await importCsv(medplum, csvFromText('long.csv', csv));
    expect(first.report).toMatchObject({ created: 500, failed: 0 });
    const batchesBefore = batches;
    const again = await importCsv(medplum, csvFromText('long.csv', csv));
    expect(again.report).toMatchObject({ unchanged: 500, updated: 0, failed: 0 });
    expect(again.report.warnings).toEqual([]);
    expect(batches).toBe(batchesBefore);
    expect(lookups.length).toBeGreaterThan(2);
    for (const body of lookups) {
      expect(body.length).toBeLessThanOrEqual(60_000);
    }
  });

  it('a lookup answered 503 is asked again; no row fails', async () => {
    const medplum = createLocalMedplum();
    let failures = 0;
    // Installed before the first request, as the other interceptions here: the link reads statuses beneath it.
    interceptServer(medplum, async (url, init, next) => {
      if (init?.method === 'POST' && url.endsWith('/_search') && failures-- > 0) {
        return transient();
      }
      return next();
    });
    await importCsv(medplum, csvFromText('p.csv', guideCsv('patients.csv')));
    failures = 1;
    const changed = guideCsv('patients.csv').replace('Jane,Smith', 'Jane,Smith-Jones');
    const { report } = await importCsv(medplum, csvFromText('p.csv', changed), { executor: { random: () => 0 } });
    expect(report).toMatchObject({ rows: 2, updated: 1, unchanged: 1, failed: 0 });
  });
});
