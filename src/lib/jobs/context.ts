import type { MedplumClient } from '@medplum/core';
import { generateId } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';
import type { Clock } from '../execute/clock';
import { systemClock } from '../execute/clock';
import type { ExecutorOptions } from '../execute/executor';
import { QuotaGovernor } from '../execute/quota';
import type { RetryStats } from '../execute/retry';
import { DEFAULT_RETRY_POLICY, Retrier } from '../execute/retry';
import type { ServerLink } from '../execute/server-link';
import { linkTo } from '../execute/server-link';
import type { TrustedLocations } from '../input/download';
import { trustedLocations } from '../input/download';
import type { ImportSettings } from '../settings';
import { defaultTables } from '../tables';
import type { TableDefinition } from '../tables/types';
import { LEASE_MARGIN_MS, parentWaitMs } from './budget';

/** Kept at the end of a budget for the last save and the call that starts the next run. */
const MIN_FINAL_RESERVE_MS = 1000;

/** What one bot invocation's jobs share: the server link, the clock, the deadline, the settings. */
export interface JobContext {
  medplum: MedplumClient;
  link: ServerLink;
  clock: Clock;
  /** When the invocation's time budget ends (ms since epoch, on `clock`). */
  deadline: number;
  /**
   * When work stops: before the deadline by what the last save and the call that starts the next
   * run will take (twice the slowest answer so far, at least a second), so that the invocation
   * ends within its budget plus the one request it may have had in flight.
   */
  workDeadline: () => number;
  /** Retries (by HTTP status, bounded by the deadline) for the jobs' own requests. */
  retrier: Retrier;
  /** The quota as the jobs' own requests see it (imports pace themselves the same way). */
  quota: QuotaGovernor;
  settings: ImportSettings;
  tables: readonly TableDefinition[];
  /**
   * Makes `tables` the ones to import with, loading them the first time (stored mappings cost a
   * search and downloads, which an idle run need not spend). May throw (see bot-call.ts).
   */
  prepareTables: () => Promise<void>;
  trusted: TrustedLocations;
  /** How long rows may wait for a parent resource (PARENT_WAIT_MINUTES). */
  parentWaitMs: number;
  /** Identifies this invocation's claims, so that its own writes are recognised after a lost answer. */
  runId: string;
  /** Executor options the imports use (tests: random, retry policy). */
  executor?: Partial<ExecutorOptions>;
  log: (line: string) => void;
  stats: RetryStats;
}

export interface JobContextOptions {
  budgetMs: number;
  /** When the invocation started (default: now). */
  start?: number;
  settings: ImportSettings;
  secrets?: Record<string, ProjectSetting>;
  tables?: readonly TableDefinition[];
  /** Loads the tables when first needed (stored mappings); without it `tables` is used as given. */
  loadTables?: () => Promise<readonly TableDefinition[]>;
  clock?: Clock;
  executor?: Partial<ExecutorOptions>;
  log?: (line: string) => void;
}

export function createJobContext(medplum: MedplumClient, options: JobContextOptions): JobContext {
  const clock = options.executor?.clock ?? options.clock ?? systemClock;
  const log = options.log ?? (() => undefined);
  const link = linkTo(medplum, clock);
  link.newRun();
  const deadline = (options.start ?? clock.now()) + options.budgetMs;
  const workDeadline = (): number =>
    deadline - Math.min(options.budgetMs / 3, Math.max(MIN_FINAL_RESERVE_MS, 2 * link.longestRequestMs));
  const stats: RetryStats = { requests: 0, retries: 0, rateLimitWaits: 0 };
  const quota = new QuotaGovernor(link, clock, log);
  const retrier = new Retrier({
    policy: options.executor?.retry ?? DEFAULT_RETRY_POLICY,
    clock,
    deadline: workDeadline,
    quota,
    random: options.executor?.random ?? Math.random,
    log,
    stats,
  });
  let prepared: Promise<void> | undefined;
  const context: JobContext = {
    medplum,
    link,
    clock,
    deadline,
    workDeadline,
    retrier,
    quota,
    settings: options.settings,
    tables: options.tables ?? defaultTables(),
    prepareTables: () =>
      (prepared ??= (async () => {
        if (options.loadTables) {
          context.tables = await options.loadTables();
        }
      })()),
    trusted: trustedLocations(link, options.secrets),
    parentWaitMs: parentWaitMs(options.secrets ?? {}),
    runId: generateId(),
    executor: { ...options.executor, clock, deadline: workDeadline },
    log,
    stats,
  };
  return context;
}

/** When a claim taken now must end: after this run is certainly over. */
export function leaseUntil(context: JobContext): number {
  return context.deadline + LEASE_MARGIN_MS;
}

