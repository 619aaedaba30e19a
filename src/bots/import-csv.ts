import type { BotEvent, MedplumClient } from '@medplum/core';
import type { Bot, DocumentReference, Reference } from '@medplum/fhirtypes';
// Engine modules are imported directly, not through src/lib/index.ts, which also exports the
// local Medplum (MockClient, fhir-router): those must not end up in a deployed bot.
import { importCsv } from '../lib/engine/import-csv';
import { resolveBotInput } from '../lib/input/bot-input';
import { leaseMs, timeBudgetMs } from '../lib/jobs/budget';
import type { ScheduledRunResult, SchedulerOptions, UploadEventResult } from '../lib/jobs/scheduler';
import { handleUploadEvent, runScheduled } from '../lib/jobs/scheduler';
import type { ImportReport } from '../lib/report';
import { resolveSettings } from '../lib/settings';

const log = (line: string): void => console.log(`[import-csv] ${line}`);

/**
 * import-csv: imports CSV exports (patients, condition catalog, patient conditions, encounters
 * with notes) into Medplum.
 *
 * - $execute with text/plain CSV, or JSON { csv } / { document: { reference } }: imports that
 *   file now and returns its report.
 * - Subscription on DocumentReference?contenttype=text/csv: imports the upload under its Task
 *   (one Task per upload; concurrent invocations import it once).
 * - Cron (input is the Bot): imports every upload without a finished Task, parents first,
 *   within a time budget, resuming from checkpoints.
 * Row values never reach the logs: only row numbers, columns, counts and source ids.
 */
export async function handler(
  medplum: MedplumClient,
  event: BotEvent
): Promise<ImportReport | UploadEventResult | ScheduledRunResult> {
  const input = event.input as { resourceType?: string } | undefined;
  if (input?.resourceType === 'DocumentReference' || input?.resourceType === 'Bot') {
    const bot = input.resourceType === 'Bot' ? (input as Bot) : await readOwnBot(medplum, event);
    const budgetMs = timeBudgetMs(event.secrets ?? {}, bot);
    const options: SchedulerOptions = {
      settings: resolveSettings({}, event.secrets ?? {}),
      budgetMs,
      leaseMs: leaseMs(budgetMs),
      progressIntervalMs: 2000,
      log,
    };
    if (input.resourceType === 'Bot') {
      const result = await runScheduled(medplum, options);
      log(`scheduled run: ${result.jobs.length} uploads handled, ${result.pending} still pending`);
      return result;
    }
    const result = await handleUploadEvent(medplum, input as DocumentReference, options);
    log(`DocumentReference/${(input as DocumentReference).id}: ${result.outcome}`);
    return result;
  }

  const request = await resolveBotInput(medplum, event);
  const { report } = await importCsv(medplum, request.document, {
    table: request.table,
    settings: request.settings,
    dryRun: request.dryRun,
    log: (line) => log(`${request.document.name}: ${line}`),
  });
  log(
    `${request.document.name}: table ${report.table}, ${report.rows} rows: ${report.created} created, ` +
      `${report.updated} updated, ${report.unchanged} unchanged, ${report.failed} failed, ${report.skipped} skipped`
  );
  return report;
}

/** The bot's own resource, for its timeout; a subscription event carries only a reference to it. */
async function readOwnBot(medplum: MedplumClient, event: BotEvent): Promise<Bot | undefined> {
  try {
    return event.bot?.reference ? await medplum.readReference<Bot>(event.bot as Reference<Bot>) : undefined;
  } catch {
    return undefined; // no read access or no such bot: the default timeout applies
  }
}
