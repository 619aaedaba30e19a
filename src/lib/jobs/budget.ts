import type { Bot, ProjectSetting } from '@medplum/fhirtypes';

/** Medplum's default Bot.timeout, in seconds. */
export const DEFAULT_BOT_TIMEOUT_SECONDS = 10;

/** Share of the bot timeout spent importing; the rest covers the last request and the Task update. */
export const BUDGET_SHARE = 0.6;

/**
 * How long a claim outlasts its run's deadline: the run stops starting work at the deadline, and
 * its last request and Task update finish well within this.
 */
export const LEASE_MARGIN_MS = 60_000;

/** Default time rows wait for their parents after an upload (see PARENT_WAIT_MINUTES). */
export const DEFAULT_PARENT_WAIT_MINUTES = 15;

function secretNumber(secrets: Record<string, ProjectSetting>, name: string, least = Number.MIN_VALUE): number | undefined {
  const secret = secrets[name];
  const raw = secret?.valueString ?? secret?.valueInteger ?? secret?.valueDecimal;
  const value = raw === undefined || raw === '' ? Number.NaN : Number(raw);
  return Number.isFinite(value) && value >= least ? value : undefined;
}

/**
 * How long one invocation may work: TIME_BUDGET_SECONDS (secret) when set, else 60% of the bot's
 * timeout (the cron input is the Bot itself; other events read it or fall back to the default).
 */
export function timeBudgetMs(secrets: Record<string, ProjectSetting>, bot?: Bot): number {
  const configured = secretNumber(secrets, 'TIME_BUDGET_SECONDS');
  if (configured !== undefined) {
    return configured * 1000;
  }
  const timeout = bot?.timeout && bot.timeout > 0 ? bot.timeout : DEFAULT_BOT_TIMEOUT_SECONDS;
  return Math.max(2000, timeout * 1000 * BUDGET_SHARE);
}

/**
 * How long rows that reference a resource not in Medplum yet keep waiting for it after their
 * upload (or after the last upload of a parent table finished): PARENT_WAIT_MINUTES, default 15
 * (0: they fail at once).
 * Files dropped together reach the bot in any order; this is how long the order may be wrong.
 */
export function parentWaitMs(secrets: Record<string, ProjectSetting>): number {
  return (secretNumber(secrets, 'PARENT_WAIT_MINUTES', 0) ?? DEFAULT_PARENT_WAIT_MINUTES) * 60_000;
}

/** Whether a run that stops with work left starts the next one at once (CONTINUE_IMPORTS, default true). */
export function continuesImports(secrets: Record<string, ProjectSetting>): boolean {
  const value = secrets.CONTINUE_IMPORTS?.valueString ?? secrets.CONTINUE_IMPORTS?.valueBoolean;
  return !(value === false || (typeof value === 'string' && /^(false|no|0|off)$/i.test(value.trim())));
}
