import type { MedplumClient } from '@medplum/core';
import { ContentType, getStatus, isOperationOutcome, normalizeErrorString, sleep } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import type { PlannedRow } from '../bundles/batch';
import { batchBody, unitWrites, writeKey } from '../bundles/batch';

/** How hard to try before a row is reported failed. */
export interface RetryPolicy {
  /** Attempts for server errors (500/502/503/504) and network failures, first one included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Rate-limit waits allowed for one batch before its remaining rows fail. */
  maxRateLimitWaits: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRateLimitWaits: 20,
};

export interface ExecutorOptions {
  retry: RetryPolicy;
  /** Rate-limit points one write costs on the server (Medplum: 100 of 50,000 a minute). */
  writeCost: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  log: (line: string) => void;
}

/** What became of one row's entry once retries are over. */
export type EntryResult =
  | { kind: 'response'; entry: BundleEntry }
  | { kind: 'request-failed'; status: number; message: string };

export interface ExecutedBatch {
  results: EntryResult[];
  /** Version of each resource before the batch, by write key; absent = did not exist. */
  versionsBefore: Map<string, string>;
  /** False when the probe could not run: 200s then count as "updated". */
  probed: boolean;
}

export interface ExecutorStats {
  requests: number;
  retries: number;
  rateLimitWaits: number;
}

const RETRYABLE_STATUS = new Set([0, 500, 502, 503, 504]);

/** Tries used so far for one batch or one read. */
interface Attempts {
  failed: number;
  rateLimitWaits: number;
}

/**
 * Sends batches and owns every retry decision:
 * - paces itself from the server's RateLimit header, sending only as many rows as the remaining
 *   quota allows and waiting for the reset otherwise;
 * - after a 429, waits for the reset and re-sends only the entries that got 429;
 * - retries 5xx answers and network failures with capped exponential backoff and jitter;
 * - never retries other 4xx answers: those are the rows' own errors.
 * Conditional PUTs are idempotent, so re-sending an entry that may have landed is safe.
 */
export class BatchExecutor {
  readonly stats: ExecutorStats = { requests: 0, retries: 0, rateLimitWaits: 0 };
  private readonly options: ExecutorOptions;

  constructor(
    private readonly medplum: MedplumClient,
    options: Partial<ExecutorOptions> = {}
  ) {
    this.options = {
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      writeCost: options.writeCost ?? 100,
      sleep: options.sleep ?? ((ms) => sleep(ms)),
      random: options.random ?? Math.random,
      log: options.log ?? (() => undefined),
    };
  }

  async execute(rows: readonly PlannedRow[]): Promise<ExecutedBatch> {
    const results: (EntryResult | undefined)[] = new Array(rows.length);
    const versionsBefore = new Map<string, string>();
    let probed = true;
    let pending = rows.map((_, i) => i);
    const attempts: Attempts = { failed: 0, rateLimitWaits: 0 };
    const gaveUpWaiting = 'rate limit: gave up waiting for the server quota';

    const failPending = (status: number, message: string): void => {
      for (const i of pending) {
        results[i] = { kind: 'request-failed', status, message };
      }
      pending = [];
    };

    while (pending.length > 0) {
      const sendable = await this.paceFor(pending.length);
      const sending = pending.slice(0, sendable);
      const later = pending.slice(sendable);
      const { body, probed: withProbe } = batchBody(sending.map((i) => rows[i]));

      let response: Bundle;
      try {
        this.stats.requests++;
        // The same request as executeBatch, with the body already serialised.
        response = await this.medplum.post(this.medplum.fhirUrl(), body, ContentType.FHIR_JSON, {
          maxRetries: 0,
          cache: 'no-cache',
        });
      } catch (err) {
        const status = statusOf(err);
        if (status === undefined) {
          throw err; // not an answer from the server: a bug, not a row problem
        }
        if (await this.waitToRetry(status, attempts, `batch of ${sending.length} rows`)) {
          continue;
        }
        failPending(status, status === 429 ? gaveUpWaiting : normalizeErrorString(err));
        break;
      }

      const entries = response.entry ?? [];
      const offset = withProbe ? 1 : 0;
      if (withProbe) {
        probed &&= readProbe(entries[0], versionsBefore, rows, sending);
      }
      const stillPending: number[] = [];
      let sawRateLimit = false;
      let sawServerError = false;
      sending.forEach((rowIndex, position) => {
        const entry = entries[position + offset];
        const status = Number(entry?.response?.status?.split(' ')[0] ?? 0);
        if (status === 429) {
          sawRateLimit = true;
          stillPending.push(rowIndex);
        } else if (RETRYABLE_STATUS.has(status) && attempts.failed + 1 < this.options.retry.maxAttempts) {
          sawServerError = true;
          stillPending.push(rowIndex);
        } else if (!entry) {
          results[rowIndex] = { kind: 'request-failed', status: 0, message: 'the server sent no response entry' };
        } else {
          results[rowIndex] = { kind: 'response', entry };
        }
      });
      pending = [...stillPending, ...later];
      if (sawRateLimit && !(await this.waitToRetry(429, attempts, `${stillPending.length} entries`))) {
        failPending(429, gaveUpWaiting);
        break;
      }
      if (!sawRateLimit && sawServerError) {
        // Entries were kept pending only while attempts remain, so this always waits.
        await this.waitToRetry(500, attempts, `${stillPending.length} entries answered with server errors`);
      }
    }
    return { results: results as EntryResult[], versionsBefore, probed };
  }

  /**
   * Runs a read (lookups before mapping, the catalog before merging) with the same retry policy:
   * waits out 429s, backs off on 5xx and network failures, rethrows anything else.
   */
  async retrying<T>(what: string, read: () => Promise<T>): Promise<T> {
    const attempts: Attempts = { failed: 0, rateLimitWaits: 0 };
    for (;;) {
      try {
        this.stats.requests++;
        return await read();
      } catch (err) {
        if (!(await this.waitToRetry(statusOf(err), attempts, what))) {
          throw err;
        }
      }
    }
  }

  /**
   * The retry policy, for writes and reads alike: after a 429, wait for the quota's reset; after a
   * 5xx or a network failure, back off. Returns false, without waiting, when the status is not
   * retryable or the tries are used up.
   */
  private async waitToRetry(status: number | undefined, attempts: Attempts, what: string): Promise<boolean> {
    const retry = this.options.retry;
    if (status === 429) {
      if (++attempts.rateLimitWaits > retry.maxRateLimitWaits) {
        return false;
      }
      await this.waitForRateLimitReset(attempts.rateLimitWaits);
      return true;
    }
    if (status !== undefined && RETRYABLE_STATUS.has(status) && ++attempts.failed < retry.maxAttempts) {
      await this.backoff(attempts.failed, `${what}: ${describeStatus(status)}`);
      return true;
    }
    return false;
  }

  /** How many of the pending rows the remaining quota allows now; waits for a reset when none. */
  private async paceFor(pendingRows: number): Promise<number> {
    for (let waits = 0; ; waits++) {
      const limit = this.fhirQuota();
      if (!limit || limit.remainingUnits >= (pendingRows + 1) * this.options.writeCost) {
        return pendingRows;
      }
      const allowed = Math.floor(limit.remainingUnits / this.options.writeCost) - 1;
      if (allowed > 0) {
        return allowed;
      }
      if (waits >= this.options.retry.maxRateLimitWaits) {
        return pendingRows; // let the server answer 429 and the normal path decide
      }
      const waitMs = Math.max(250, limit.secondsUntilReset * 1000 + 100);
      this.stats.rateLimitWaits++;
      this.options.log(`pacing: quota nearly used, waiting ${Math.round(waitMs / 1000)} s for the reset`);
      await this.options.sleep(waitMs);
      // The client only learns the new quota from the next response: assume the reset happened.
      return pendingRows;
    }
  }

  private fhirQuota(): { remainingUnits: number; secondsUntilReset: number } | undefined {
    try {
      const limits = this.medplum.rateLimitStatus();
      const fhir = limits.filter((l) => /fhir/i.test(l.name));
      if (fhir.length === 0) {
        return undefined;
      }
      return fhir.reduce((a, b) => (a.remainingUnits <= b.remainingUnits ? a : b));
    } catch {
      return undefined; // an unparsable header must not stop an import
    }
  }

  private async waitForRateLimitReset(waits: number): Promise<void> {
    this.stats.rateLimitWaits++;
    const limits = safe(() => this.medplum.rateLimitStatus()) ?? [];
    const resetSeconds = Math.max(0, ...limits.filter((l) => l.remainingUnits <= 0).map((l) => l.secondsUntilReset));
    const waitMs = resetSeconds > 0 ? resetSeconds * 1000 + 100 : Math.min(60_000, 1000 * waits);
    this.options.log(`rate limited (429): waiting ${Math.round(waitMs / 1000)} s before re-sending`);
    await this.options.sleep(waitMs);
  }

  private async backoff(attempt: number, what: string): Promise<void> {
    this.stats.retries++;
    const { baseDelayMs, maxDelayMs } = this.options.retry;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const delay = Math.round(ceiling / 2 + (this.options.random() * ceiling) / 2);
    this.options.log(`retry ${attempt}: ${what}; waiting ${delay} ms`);
    await this.options.sleep(delay);
  }
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/**
 * The HTTP status of a failed request: the server's status, 0 for a network failure, undefined
 * for anything else (a bug or a domain error: never retried). Duck-typed rather than instanceof,
 * because the client's errors may come from another copy of @medplum/core (the bot runtime's).
 */
export function statusOf(err: unknown): number | undefined {
  const outcome = (err as { outcome?: unknown } | undefined)?.outcome;
  if (isOperationOutcome(outcome)) {
    return getStatus(outcome);
  }
  if (isOperationOutcome(err)) {
    return getStatus(err);
  }
  return isNetworkError(err) ? 0 : undefined;
}

const NETWORK_ERROR_CODES = /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|UND_ERR_\w+)$/;

/** fetch failures as undici, browsers and node report them. */
function isNetworkError(err: unknown): boolean {
  const error = err as { name?: string; message?: string; code?: string; cause?: { code?: string } } | undefined;
  if (!error) {
    return false;
  }
  if (error.name === 'TypeError' && /fetch failed|failed to fetch|network/i.test(error.message ?? '')) {
    return true;
  }
  return NETWORK_ERROR_CODES.test(error.code ?? '') || NETWORK_ERROR_CODES.test(error.cause?.code ?? '');
}

function describeStatus(status: number): string {
  return status === 0 ? 'network failure' : `HTTP ${status}`;
}

/** Records the versions the probe saw; false when it did not answer usefully. */
function readProbe(
  entry: BundleEntry | undefined,
  versions: Map<string, string>,
  rows: readonly PlannedRow[],
  sending: readonly number[]
): boolean {
  const inner = (entry?.resource as Bundle | undefined)?.entry;
  if (!entry?.response?.status?.startsWith('2') || !inner) {
    return false;
  }
  const wanted = new Set(sending.flatMap((i) => unitWrites(rows[i].unit).map(writeKey)));
  for (const searchEntry of inner) {
    const searchset = searchEntry.resource as Bundle | OperationOutcome | undefined;
    if (searchset?.resourceType !== 'Bundle') {
      return false;
    }
    for (const match of searchset.entry ?? []) {
      const resource = match.resource;
      const versionId = resource?.meta?.versionId;
      if (!resource || !versionId) {
        return false;
      }
      const identifiers = 'identifier' in resource ? [resource.identifier].flat() : [];
      for (const identifier of identifiers) {
        const key = `${resource.resourceType}|${identifier?.system}|${identifier?.value}`;
        if (wanted.has(key)) {
          versions.set(key, versionId);
        }
      }
    }
  }
  return true;
}
