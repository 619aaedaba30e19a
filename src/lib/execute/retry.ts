import { normalizeErrorString } from '@medplum/core';
import type { Clock, Deadline } from './clock';
import { deadlineAt } from './clock';
import type { QuotaGovernor } from './quota';
import { OutOfTimeError } from './quota';
import { statusOf } from './server-link';

/** How hard to try before a request, or a row, is given up. */
export interface RetryPolicy {
  /** Attempts for server errors (500/502/503/504), conflicts (409) and network failures, first one included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Rate-limit waits allowed for one request before it fails. */
  maxRateLimitWaits: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRateLimitWaits: 20,
};

/**
 * What a failed answer calls for, decided by its HTTP status:
 * - 429: wait for the quota window's reset;
 * - 500, 502, 503, 504 and network failures (0): back off and try again;
 * - 409 (concurrent writes could not be serialised): back off and try again;
 * - anything else: the request itself is wrong; trying again changes nothing.
 */
export type FailureKind = 'rate-limited' | 'transient' | 'conflict' | 'final';

export function failureKind(status: number | undefined): FailureKind {
  if (status === 429) {
    return 'rate-limited';
  }
  if (status === 0 || status === 500 || status === 502 || status === 503 || status === 504) {
    return 'transient';
  }
  return status === 409 ? 'conflict' : 'final';
}

/** Tries used so far for one request (or one batch's pending entries). */
export interface Attempts {
  failed: number;
  rateLimitWaits: number;
}

export function freshAttempts(): Attempts {
  return { failed: 0, rateLimitWaits: 0 };
}

export interface RetryStats {
  requests: number;
  retries: number;
  rateLimitWaits: number;
}

export interface RetrierOptions {
  policy: RetryPolicy;
  clock: Clock;
  /** No wait may end after this, and no request starts after it. */
  deadline: Deadline;
  quota: QuotaGovernor;
  random: () => number;
  log: (line: string) => void;
  stats: RetryStats;
}

/**
 * The one retry decision for every request the importer makes (batches, reads, Task updates,
 * downloads): by HTTP status, with capped exponential backoff and jitter, rate-limit waits until
 * the window resets, and every wait bounded by the invocation's deadline. A wait that would pass
 * the deadline is not started: OutOfTimeError, and the caller checkpoints.
 */
export class Retrier {
  constructor(private readonly options: RetrierOptions) {}

  get deadline(): number {
    return deadlineAt(this.options.deadline);
  }

  get clock(): Clock {
    return this.options.clock;
  }

  /**
   * Waits before another try of something that failed with `status`. Returns false, without
   * waiting, when the status is not worth another try or the tries are used up; throws
   * OutOfTimeError when the wait would pass the deadline.
   */
  async waitToRetry(status: number | undefined, attempts: Attempts, what: string): Promise<boolean> {
    const { policy, quota, stats, log } = this.options;
    const deadline = this.deadline;
    const kind = failureKind(status);
    if (kind === 'final') {
      return false;
    }
    if (kind === 'rate-limited') {
      if (++attempts.rateLimitWaits > policy.maxRateLimitWaits) {
        return false;
      }
      stats.rateLimitWaits++;
      const waited = await quota.waitForReset(deadline);
      if (waited === 'past-deadline') {
        throw new OutOfTimeError(`waiting for the rate limit's reset (${what})`);
      }
      if (waited === 'no-reading') {
        // The server said 429 without a reset time: back off instead.
        await this.sleepWithin(Math.min(60_000, 1000 * attempts.rateLimitWaits), what);
      }
      return true;
    }
    if (++attempts.failed >= policy.maxAttempts) {
      return false;
    }
    stats.retries++;
    const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempts.failed - 1));
    const delay = Math.round(ceiling / 2 + (this.options.random() * ceiling) / 2);
    log(`retry ${attempts.failed}: ${what}: ${describeStatus(status)}; waiting ${delay} ms`);
    await this.sleepWithin(delay, what);
    return true;
  }

  /**
   * Runs one request with the policy; rethrows what is not worth retrying. No attempt starts
   * after the deadline (OutOfTimeError), except the first of a `final` request: the save that
   * records where a stopped run left off.
   */
  async run<T>(what: string, request: () => Promise<T>, options: { final?: boolean } = {}): Promise<T> {
    const attempts = freshAttempts();
    for (let attempt = 0; ; attempt++) {
      if (!(options.final && attempt === 0) && this.options.clock.now() >= this.deadline) {
        throw new OutOfTimeError(`before ${what}`);
      }
      try {
        this.options.stats.requests++;
        return await request();
      } catch (err) {
        if (err instanceof OutOfTimeError || !(await this.waitToRetry(statusOf(err), attempts, what))) {
          throw err;
        }
      }
    }
  }

  private async sleepWithin(ms: number, what: string): Promise<void> {
    const { clock } = this.options;
    if (clock.now() + ms > this.deadline) {
      throw new OutOfTimeError(`before ${what} could be tried again`);
    }
    await clock.sleep(ms);
  }
}

export function describeStatus(status: number | undefined): string {
  if (status === undefined) {
    return 'error';
  }
  return status === 0 ? 'network failure' : `HTTP ${status}`;
}

/** A failure's message for reports: the server's words, never request bodies. */
export function failureMessage(err: unknown): string {
  return normalizeErrorString(err);
}
