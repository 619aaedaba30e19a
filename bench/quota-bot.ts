/**
 * Issue 11's quota target, measured as test/jobs/quota-schedule.test.ts measures it: the built bot
 * (bundled here from the working tree into bench/tmp/, as `npm run build` bundles it, so the
 * shared dist/ is left alone), run in a vm as Medplum's vmcontext runtime runs it, on a project at
 * Medplum's default quota (50,000 points a minute), a 20,000-row upload, a 60 s bot timeout and
 * a 36 s time budget, resumed by cron (and by its own `$execute` continuations), on a simulated
 * clock; the local Medplum spends 20 ms per request and 3 ms per batch entry, as in that test.
 *
 * The schedule loop is test/helpers/bot-schedule.ts's runSchedule with the bundle's path as a
 * parameter (that helper runs dist/import-csv.js).
 */
import type { Bot, ProjectSetting, Task } from '@medplum/fhirtypes';
import esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import { botBuildOptions, readBotConfig } from '../esbuild-script.mjs';
import type { ImportReport } from '../src/lib';
import type { LocalMedplum } from '../src/lib/local-medplum';
import { createLocalMedplum } from '../src/lib/local-medplum';
import type { FakeClock } from '../test/helpers/clock';
import { createFakeClock } from '../test/helpers/clock';
import { patientsCsv } from '../test/helpers/generate';
import { uploadCsv } from '../test/helpers/uploads';
import { runBotInVm } from '../test/helpers/vm-runner';

export const QUOTA_ROWS = 20_000;
export const QUOTA_POINTS_PER_MINUTE = 50_000;
/** The points per new row test/jobs/quota-schedule.test.ts divides by (the former conditional PUT in a batch). */
export const TEST_POINTS_PER_ROW = 140;

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export interface QuotaRun {
  cronMinutes: number;
  rows: number;
  /** Simulated minutes from the upload's first event to the Task completed. */
  minutes: number;
  rowsPerMinute: number;
  invocations: number;
  longestRunSeconds: number;
  /** Every point charged during the schedule (Task saves, reads, $execute included), per row. */
  pointsPerRow: number;
  /** Rows/minute as a share of what the quota allows at TEST_POINTS_PER_ROW (the test's figure). */
  shareAtTestCost: number;
  report: Pick<ImportReport, 'rows' | 'created' | 'updated' | 'unchanged' | 'failed' | 'skipped'>;
}

/** Bundles the bot from the working tree into bench/tmp/ (same options as npm run build). */
export async function buildBot(): Promise<string> {
  const bot = readBotConfig().bots.find((b) => b.name === 'import-csv');
  if (!bot) {
    throw new Error('medplum.config.json lists no import-csv bot');
  }
  const dist = here('tmp/import-csv.js');
  await esbuild.build({ ...botBuildOptions(here(`../${bot.source}`), dist), logLevel: 'error' });
  return dist;
}


/** The import Tasks (test/helpers/uploads.ts importTasks). */
function importTasks(medplum: LocalMedplum): Task[] {
  return medplum.allResources<Task>('Task').filter((t) => t.code?.coding?.some((c) => c.code === 'csv-import'));
}

interface Invocation {
  start: number;
  end: number;
}

/** runSchedule of test/helpers/bot-schedule.ts, with the bundle to run as a parameter. */
async function runSchedule(
  options: { distPath: string; medplum: LocalMedplum; clock: FakeClock; bot: Bot & { id: string }; cronMinutes: number; secrets: Record<string, string> },
  first: { input: unknown },
  done: () => boolean
): Promise<Invocation[]> {
  const { medplum, clock, bot } = options;
  const secrets: Record<string, ProjectSetting> = Object.fromEntries(
    Object.entries(options.secrets).map(([name, valueString]) => [name, { name, valueString }])
  );
  const cronMs = options.cronMinutes * 60_000;
  const invocations: Invocation[] = [];
  const run = async (input: unknown): Promise<void> => {
    const start = clock.now();
    await runBotInVm({
      distPath: options.distPath,
      medplum,
      clock,
      timeoutMs: (bot.timeout ?? 10) * 1000,
      event: { input, bot: { reference: `Bot/${bot.id}` }, contentType: 'application/fhir+json', secrets },
    });
    invocations.push({ start, end: clock.now() });
  };
  let nextTick = Math.ceil(clock.now() / cronMs) * cronMs;
  await run(first.input);
  while (!done() && invocations.length < 2000) {
    const [queued] = medplum.takeBotInvocations();
    if (queued) {
      clock.advance(1000);
      await run(queued.input);
      continue;
    }
    while (nextTick <= clock.now()) {
      nextTick += cronMs;
    }
    clock.advance(nextTick - clock.now());
    await run(bot);
  }
  return invocations;
}

/** One simulated schedule; throws when the import does not complete with every row created. */
export async function quotaRun(distPath: string, cronMinutes: number, rows = QUOTA_ROWS): Promise<QuotaRun> {
  const clock = createFakeClock();
  const medplum = createLocalMedplum({ clock, fhirQuota: QUOTA_POINTS_PER_MINUTE, serverTime: { perRequestMs: 20, perEntryMs: 3 } });
  const bot = (await medplum.createResource<Bot>({ resourceType: 'Bot', name: 'import-csv', timeout: 60 })) as Bot & { id: string };
  const doc = await uploadCsv(medplum, 'patients.csv', patientsCsv(rows, 21));
  const pointsBefore = medplum.stats.points;
  const started = clock.now();
  const task = (): Task | undefined => importTasks(medplum)[0];
  const invocations = await runSchedule(
    { distPath, medplum, clock, bot, cronMinutes, secrets: { TIME_BUDGET_SECONDS: '36' } },
    { input: doc },
    () => task()?.status === 'completed' || task()?.status === 'failed'
  );
  const finished = task();
  const report = JSON.parse(finished?.output?.find((o) => o.type.text === 'report')?.valueString ?? '{}') as ImportReport;
  // Every row must be in Medplum once. The report must say created for each (the test asserts it);
  // when it does not, the figure is still measured and the report's counts are recorded.
  const stored = medplum.allResources('Patient').length;
  if (finished?.status !== 'completed' || stored !== rows) {
    throw new Error(
      `quota run (cron every ${cronMinutes} min): Task ${finished?.status ?? 'missing'} (${finished?.businessStatus?.text ?? finished?.statusReason?.text ?? ''}), ` +
        `${stored} Patients stored for ${rows} rows after ${invocations.length} runs`
    );
  }
  const minutes = (clock.now() - started) / 60_000;
  const rowsPerMinute = rows / minutes;
  return {
    cronMinutes,
    rows,
    minutes,
    rowsPerMinute,
    invocations: invocations.length,
    longestRunSeconds: Math.max(...invocations.map((i) => i.end - i.start)) / 1000,
    pointsPerRow: (medplum.stats.points - pointsBefore) / rows,
    shareAtTestCost: rowsPerMinute / (QUOTA_POINTS_PER_MINUTE / TEST_POINTS_PER_ROW),
    report: { rows: report.rows, created: report.created, updated: report.updated, unchanged: report.unchanged, failed: report.failed, skipped: report.skipped },
  };
}

/** The quota figure of the benchmark: one simulated schedule per cron interval (deterministic: one run each). */
export interface QuotaSection {
  rows: number;
  quotaPointsPerMinute: number;
  /** The importer's points per new row (the plan-first figure): what the quota's rate is computed with. */
  pointsPerNewRow: number;
  /** quotaPointsPerMinute / pointsPerNewRow. */
  allowedRowsPerMinute: number;
  setup: string;
  runs: (QuotaRun & { share: number })[];
  /** Why nothing was measured (e.g. the bot does not build or run in the working tree). */
  error?: string;
}

export async function measureQuota(
  pointsPerNewRow: number,
  rows: number,
  cronMinutes: readonly number[],
  onRun: (line: string) => void = () => undefined
): Promise<QuotaSection> {
  const allowedRowsPerMinute = QUOTA_POINTS_PER_MINUTE / pointsPerNewRow;
  const section: QuotaSection = {
    rows,
    quotaPointsPerMinute: QUOTA_POINTS_PER_MINUTE,
    pointsPerNewRow,
    allowedRowsPerMinute,
    setup:
      'built bot (working tree) in a vm, simulated clock, Bot.timeout 60 s, TIME_BUDGET_SECONDS 36, continuations on, ' +
      'local Medplum at 50,000 points a minute with 20 ms a request + 3 ms a batch entry (as test/jobs/quota-schedule.test.ts)',
    runs: [],
  };
  let dist: string;
  try {
    dist = await buildBot();
  } catch (err) {
    return { ...section, error: `the bot does not build from the working tree: ${String((err as Error)?.message ?? err)}` };
  }
  for (const cron of cronMinutes) {
    try {
      const run = await quotaRun(dist, cron, rows);
      const share = run.rowsPerMinute / allowedRowsPerMinute;
      section.runs.push({ ...run, share });
      onRun(
        `quota-bound bot, cron every ${cron} min: ${run.minutes.toFixed(1)} simulated minutes, ${Math.round(run.rowsPerMinute)} rows/min, ` +
          `${(share * 100).toFixed(1)}% of ${Math.round(allowedRowsPerMinute)} allowed, ${run.invocations} runs; report ${JSON.stringify(run.report)}`
      );
    } catch (err) {
      return { ...section, error: `the built bot failed (cron every ${cron} min): ${String((err as Error)?.message ?? err)}` };
    }
  }
  return section;
}
