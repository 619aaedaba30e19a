import type { BotEvent, MedplumClient } from '@medplum/core';
import { ContentType, normalizeErrorString } from '@medplum/core';
import type { Bot, DocumentReference, Reference } from '@medplum/fhirtypes';
import type { CsvDocument } from '../csv/document';
import { csvFromText } from '../csv/document';
import type { ImportOutcome } from '../engine/import-csv';
import { importCsv } from '../engine/import-csv';
import type { Clock } from '../execute/clock';
import { systemClock } from '../execute/clock';
import type { ExecutorOptions } from '../execute/executor';
import { OutOfTimeError } from '../execute/quota';
import type { BotCall, CsvSource, DirectImport } from '../input/event';
import { BotInputError } from '../input/event';
import { DownloadError, downloadCsv } from '../input/download';
import type { PlanRow } from '../plan/plan-rows';
import { planRowOf } from '../plan/plan-rows';
import type { ReconcileReport } from '../reconcile';
import { reconcileFile } from '../reconcile';
import type { ImportReport } from '../report';
import { resolveSettings } from '../settings';
import type { TableDefinition } from '../tables/types';
import { continuesImports, timeBudgetMs } from './budget';
import type { JobContext } from './context';
import { createJobContext } from './context';
import { recordPlanTask, recordReconcileTask } from './check-task';
import type { SweepResult, UploadEventResult } from './scheduler';
import { handleUploadEvent, runSweep } from './scheduler';
import type { BrokenMappings, UnavailableMappings } from './stored-mappings';
import { loadStoredMappings, runWithoutMappings } from './stored-mappings';
import { uploadsOf } from './task-ledger';
import type { UploadJobResult } from './upload-job';

/** A plan's or a reconciliation's answer names the Task that records it (absent when it could not be saved). */
export type BotCallResult = (ImportReport & { task?: string }) | (ReconcileReport & { task?: string }) | UploadEventResult | SweepResult;

export interface BotCallOptions {
  tables?: readonly TableDefinition[];
  clock?: Clock;
  executor?: Partial<ExecutorOptions>;
  log?: (line: string) => void;
}

/**
 * Does what a bot invocation asked for (see classifyBotCall), within the invocation's time
 * budget. When an upload's import stops at the budget with work left, the bot asks Medplum to run
 * it again at once (`$execute` with Prefer: respond-async), so long imports do not wait for the
 * next cron tick; the cron sweep remains the safety net.
 */
export async function runBotCall(
  medplum: MedplumClient,
  event: BotEvent,
  call: BotCall,
  options: BotCallOptions = {}
): Promise<BotCallResult> {
  const secrets = event.secrets ?? {};
  const clock = options.clock ?? systemClock;
  const start = clock.now();
  const bot = (event.input as { resourceType?: string })?.resourceType === 'Bot' ? (event.input as Bot) : undefined;
  const budgetMs = timeBudgetMs(secrets, bot ?? (secrets.TIME_BUDGET_SECONDS ? undefined : await readOwnBot(medplum, event)));
  const log = options.log ?? (() => undefined);
  const settings = call.kind === 'import' ? call.options.settings : jobSettings(secrets);
  // The project's stored mappings, when it has some (else the built-in default): read once per
  // invocation, when first needed (a sweep with nothing to do reads none).
  let unusable: BrokenMappings | UnavailableMappings | undefined;
  const loadTables = async (): Promise<readonly TableDefinition[]> => {
    const stored = await loadStoredMappings(context);
    if (stored.kind === 'broken' || stored.kind === 'unavailable') {
      unusable = stored;
      throw new MappingsUnusableError(stored.message);
    }
    return stored.kind === 'stored' ? stored.set.tables : context.tables;
  };
  const context = createJobContext(medplum, {
    budgetMs,
    start,
    settings,
    secrets,
    tables: options.tables,
    loadTables: options.tables ? undefined : loadTables,
    clock,
    executor: options.executor,
    log,
  });

  let result: UploadEventResult | SweepResult;
  try {
    if (call.kind !== 'sweep') {
      await context.prepareTables();
    }
    if (call.kind === 'import') {
      return call.options.mode === 'reconcile'
        ? await reconcileDirect(context, call.source, call.options)
        : await importDirect(context, call.source, call.options);
    }
    if (call.kind === 'sweep') {
      result = await runSweep(context);
    } else {
      const document = call.kind === 'upload' ? call.document : await readDocument(context, call.reference);
      result = await handleUploadEvent(context, document, call.table);
    }
  } catch (err) {
    if (!(err instanceof MappingsUnusableError) || !unusable) {
      throw err;
    }
    return runWithoutMappings(context, call, unusable);
  }
  if (jobsOf(result).some((job) => job.outcome === 'paused') && continuesImports(secrets)) {
    await continueSoon(medplum, event, log);
  }
  return result;
}

/** The stored mappings could not be used: what to do then is runWithoutMappings's. */
class MappingsUnusableError extends Error {}

function jobSettings(secrets: BotEvent['secrets']): ReturnType<typeof resolveSettings> {
  try {
    return resolveSettings({}, secrets ?? {});
  } catch (err) {
    throw new BotInputError(`The project's settings are invalid: ${(err as Error).message}`);
  }
}

function jobsOf(result: UploadEventResult | SweepResult): UploadJobResult[] {
  if ('jobs' in result) {
    return result.jobs;
  }
  return result.outcome === 'ignored' ? [] : [result];
}

/**
 * $execute with the file or a Binary: imported now (or dry-run, or planned); the report is the
 * answer. A plan is also recorded as a Task, with every row's action as a CSV attachment.
 */
async function importDirect(context: JobContext, source: CsvSource, options: DirectImport): Promise<ImportReport & { task?: string }> {
  const doc = await openSource(context, source);
  const plan = options.mode === 'plan';
  const planRows: PlanRow[] = [];
  const outcome: ImportOutcome = await importCsv(context.medplum, doc, {
    table: options.table,
    settings: options.settings,
    dryRun: options.mode === 'dry-run',
    plan,
    tables: context.tables,
    deadline: context.workDeadline,
    executor: context.executor,
    log: (line) => context.log(`${doc.name}: ${line}`),
    onRowResult: plan ? (result) => planRows.push(planRowOf(doc.name, result)) : undefined,
  });
  const report = outcome.report;
  if (outcome.stoppedAt) {
    const done = plan ? 'planned' : 'imported';
    report.warnings.push(
      `the time budget ran out: rows after ${outcome.stoppedAt.resumeAfterRow} were not ${done}; ${plan ? 'plan it with the command line' : 'upload the file instead (its import then resumes by itself) or use the command line'}`
    );
  }
  if (!plan) {
    return report;
  }
  const task = await recordPlanTask(context, source, report, planRows);
  return task ? { ...report, task } : report;
}

/** $execute with `reconcile: true`: Medplum compared with the file by identifier, recorded as a Task too. */
async function reconcileDirect(context: JobContext, source: CsvSource, options: DirectImport): Promise<ReconcileReport & { task?: string }> {
  const doc = await openSource(context, source);
  let reconciliation: ReconcileReport;
  try {
    reconciliation = await reconcileFile(context.medplum, doc, {
      table: options.table,
      settings: options.settings,
      tables: context.tables,
      executor: context.executor,
      log: (line) => context.log(`${doc.name}: ${line}`),
    });
  } catch (err) {
    if (err instanceof OutOfTimeError) {
      // A partial comparison would list resources as missing that were only not looked at.
      throw new BotInputError(`${doc.name}: ${err.message}: the reconciliation did not finish; reconcile the file with the command line (npm run import -- --reconcile)`);
    }
    throw err;
  }
  const task = await recordReconcileTask(context, source, reconciliation);
  return task ? { ...reconciliation, task } : reconciliation;
}

async function openSource(context: JobContext, source: CsvSource): Promise<CsvDocument> {
  try {
    return await readSource(context, source);
  } catch (err) {
    if (err instanceof DownloadError) {
      throw new BotInputError(`${source.name}: ${err.message}`);
    }
    throw err;
  }
}

async function readSource(context: JobContext, source: CsvSource): Promise<CsvDocument> {
  const download = { retrier: context.retrier };
  if (source.kind === 'text') {
    return csvFromText(source.name, source.text);
  }
  if (source.kind === 'binary') {
    return downloadCsv(context.link, context.trusted, source.binaryId, source.name, download);
  }
  const uploads = uploadsOf(await readDocument(context, source.reference), context.trusted);
  if (uploads.length !== 1) {
    throw new BotInputError(
      uploads.length
        ? `${source.reference} has ${uploads.length} CSV attachments (${uploads.map((u) => u.fileName).join(', ')}): dry-run them one at a time`
        : `${source.reference} has no current CSV attachment with a URL`
    );
  }
  const [upload] = uploads;
  if (!upload.binaryId) {
    throw new BotInputError(`${upload.fileName}: ${upload.refusal}`);
  }
  return downloadCsv(context.link, context.trusted, upload.binaryId, upload.fileName, download);
}

async function readDocument(context: JobContext, reference: string): Promise<DocumentReference> {
  try {
    return await context.retrier.run(`reading ${reference}`, () =>
      context.medplum.readReference<DocumentReference>({ reference }, { cache: 'no-cache', maxRetries: 0 })
    );
  } catch (err) {
    throw new BotInputError(`Could not read ${reference}: ${normalizeErrorString(err)}`);
  }
}

/** The bot's own resource, for its timeout; a subscription event carries only a reference to it. */
async function readOwnBot(medplum: MedplumClient, event: BotEvent): Promise<Bot | undefined> {
  try {
    return event.bot?.reference ? await medplum.readReference<Bot>(event.bot as Reference<Bot>, { maxRetries: 0 }) : undefined;
  } catch {
    return undefined; // no read access or no such bot: the default timeout applies
  }
}

/** Asks Medplum to run this bot again right away, in the background, to go on with paused imports. */
async function continueSoon(medplum: MedplumClient, event: BotEvent, log: (line: string) => void): Promise<void> {
  const id = /^Bot\/([A-Za-z0-9\-.]{1,64})$/.exec(event.bot?.reference ?? '')?.[1];
  if (!id) {
    return;
  }
  try {
    await medplum.executeBot(id, { sweep: true }, ContentType.JSON, {
      headers: { Prefer: 'respond-async' },
      maxRetries: 0,
    });
    log('work left: asked Medplum to run the import again now');
  } catch (err) {
    log(`could not start the next run (${normalizeErrorString(err)}); the cron sweep will go on`);
  }
}
