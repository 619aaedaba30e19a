import type { BotEvent, MedplumClient } from '@medplum/core';
// Engine modules are imported directly, not through src/lib/index.ts, so that nothing meant for
// tests or the command line ends up in a deployed bot.
import { classifyBotCall } from '../lib/input/event';
import type { BotCallResult } from '../lib/jobs/bot-call';
import { runBotCall } from '../lib/jobs/bot-call';
import type { ImportReport } from '../lib/report';

const log = (line: string): void => console.log(`[import-csv] ${line}`);

/**
 * import-csv: imports CSV exports from a legacy EHR into Medplum.
 *
 * - $execute with text/plain CSV, or JSON { csv } / { document: { reference: "Binary/<id>" } }:
 *   imports that file now and returns its report.
 * - Subscription on CSV uploads (DocumentReference), or $execute { document: { reference:
 *   "DocumentReference/<id>" } }: imports each CSV attachment under its Task.
 * - Cron (input is the Bot), or { "sweep": true }: records new uploads, imports what is due,
 *   parents first, within a time budget, resuming from checkpoints.
 * Row values never reach the logs: only row numbers, columns, counts and source ids.
 */
export async function handler(medplum: MedplumClient, event: BotEvent): Promise<BotCallResult> {
  const call = classifyBotCall(event);
  const result = await runBotCall(medplum, event, call, { log });
  log(summary(call.kind, result));
  return result;
}

function summary(kind: string, result: BotCallResult): string {
  if ('rows' in result) {
    const r = result as ImportReport;
    return `${r.file}: table ${r.table}, ${r.rows} rows: ${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged, ${r.conflict ? `${r.conflict} in conflict, ` : ''}${r.failed} failed, ${r.skipped} skipped`;
  }
  if ('pending' in result) {
    return `sweep: ${result.jobs.length} uploads handled, ${result.pending} still pending`;
  }
  if ('jobs' in result) {
    return `${kind}: ${result.jobs.map((j) => `${j.file}: ${j.outcome}`).join('; ')}`;
  }
  return `${kind}: ${'file' in result ? `${result.file}: ` : ''}${result.outcome}${result.message ? ` (${result.message})` : ''}`;
}
