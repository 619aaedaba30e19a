import type { Bot, ProjectSetting } from '@medplum/fhirtypes';

/** Medplum's default Bot.timeout, in seconds. */
export const DEFAULT_BOT_TIMEOUT_SECONDS = 10;

/** Share of the bot timeout spent importing; the rest covers the last batch and the Task update. */
export const BUDGET_SHARE = 0.6;

/**
 * How long one invocation may work: TIME_BUDGET_SECONDS (secret) when set, else 60% of the bot's
 * timeout (the cron input is the Bot itself; other events fall back to the default timeout).
 */
export function timeBudgetMs(secrets: Record<string, ProjectSetting>, bot?: Bot): number {
  const configured = secrets.TIME_BUDGET_SECONDS;
  const seconds = Number(configured?.valueString ?? configured?.valueInteger ?? configured?.valueDecimal);
  if (Number.isFinite(seconds) && seconds > 0) {
    return seconds * 1000;
  }
  const timeout = bot?.timeout && bot.timeout > 0 ? bot.timeout : DEFAULT_BOT_TIMEOUT_SECONDS;
  return Math.max(2000, timeout * 1000 * BUDGET_SHARE);
}

/** A claim lasts past the budget with a margin; an invocation that dies frees its job after it. */
export function leaseMs(budgetMs: number): number {
  return budgetMs + 60_000;
}
