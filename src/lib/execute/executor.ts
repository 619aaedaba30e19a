import type { MedplumClient } from '@medplum/core';
import { ContentType, normalizeErrorString } from '@medplum/core';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { OutgoingRow } from '../bundles/batch';
import { batchBody } from '../bundles/batch';
import type { Clock, Deadline } from './clock';
import { deadlineAt, NO_DEADLINE, systemClock } from './clock';
import { OutOfTimeError, QuotaGovernor } from './quota';
import type { Attempts, RetryPolicy, RetryStats } from './retry';
import { DEFAULT_RETRY_POLICY, failureKind, freshAttempts, Retrier } from './retry';
import type { ServerLink } from './server-link';
import { linkTo, statusOf } from './server-link';

export { DEFAULT_RETRY_POLICY } from './retry';
export type { RetryPolicy } from './retry';

/** What a request is expected to take before any was timed. */
const MIN_REQUEST_ESTIMATE_MS = 100;

export interface ExecutorOptions {
  retry: RetryPolicy;
  clock: Clock;
  /** No request is started, and no wait is begun, that would end after this. */
  deadline: Deadline;
  random: () => number;
  log: (line: string) => void;
  /** Largest request body; rows are sent in as many requests as they need (the server refuses JSON over 1 MB). */
  maxRequestBytes: number;
}

/** What became of one row's entry. */
export type EntryResult =
  | { kind: 'response'; entry: BundleEntry }
  | { kind: 'request-failed'; status: number; message: string }
  /** Not written before the deadline: the row is left for the next run. */
  | { kind: 'stopped' };

export interface ExecutedBatch {
  results: EntryResult[];
}

export interface ExecutorStats extends RetryStats {
  /** Rows left for the next run because the deadline came first. */
  stopped: number;
}

/**
 * Sends batches and owns what happens to them until each entry has a final answer:
 * - sizes each request to the quota points left (QuotaGovernor), waiting for a reset when needed;
 * - re-sends only the entries that need it: 429 after the window's reset, 409 (writes that could
 *   not be serialised against a concurrent writer) and 5xx with backoff;
 * - classifies whole-request failures by their HTTP status (Retrier), never retrying other 4xx;
 * - stops at the deadline, marking what was not written `stopped` instead of failing it.
 * An entry sent again goes in its `retry` form when it has one (a create becomes a conditional
 * create), so re-sending an entry that may have landed is safe.
 */
export class BatchExecutor {
  readonly stats: ExecutorStats = { requests: 0, retries: 0, rateLimitWaits: 0, stopped: 0 };
  readonly link: ServerLink;
  readonly quota: QuotaGovernor;
  readonly retrier: Retrier;
  private readonly options: ExecutorOptions;

  constructor(
    private readonly medplum: MedplumClient,
    options: Partial<ExecutorOptions> = {}
  ) {
    this.options = {
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      clock: options.clock ?? systemClock,
      deadline: options.deadline ?? NO_DEADLINE,
      random: options.random ?? Math.random,
      log: options.log ?? (() => undefined),
      maxRequestBytes: options.maxRequestBytes ?? Number.POSITIVE_INFINITY,
    };
    this.link = linkTo(medplum, this.options.clock);
    this.quota = new QuotaGovernor(this.link, this.options.clock, this.options.log);
    this.retrier = new Retrier({ ...this.options, policy: this.options.retry, quota: this.quota, stats: this.stats });
  }

  get deadline(): number {
    return deadlineAt(this.options.deadline);
  }

  /** True when the deadline has come: no new work should start. */
  outOfTime(): boolean {
    return this.options.clock.now() >= this.deadline;
  }

  /**
   * True when `requests` more requests, each as slow as the slowest so far, end before the
   * deadline: a batch's lookup is not started when its write could not follow.
   */
  hasTimeFor(requests: number): boolean {
    return this.options.clock.now() + requests * Math.max(MIN_REQUEST_ESTIMATE_MS, this.link.longestRequestMs) <= this.deadline;
  }

  /** Logs a line of the import's progress (no cell values). */
  log(line: string): void {
    this.options.log(line);
  }

  /** Runs one read or write with the retry policy (see Retrier.run). */
  retrying<T>(what: string, request: () => Promise<T>): Promise<T> {
    return this.retrier.run(what, request);
  }

  async execute(rows: readonly OutgoingRow[]): Promise<ExecutedBatch> {
    const batch = new BatchInProgress(rows);
    const attempts = freshAttempts();
    let pending = rows.map((_, i) => i);

    while (pending.length > 0) {
      const admitted = await this.quota.admit(
        pending.map((i) => rows[i].writes),
        0,
        this.deadline
      );
      if (admitted === 0 || this.outOfTime()) {
        batch.stop(pending, this.stats);
        break;
      }
      const sending = this.fitting(rows, pending.slice(0, admitted), batch);
      const later = pending.slice(sending.length);
      const sent = await this.send(rows, sending, batch);
      if (sent.kind === 'failed') {
        const retry = await this.mayRetry(sent.status, attempts, `batch of ${sending.length} rows`);
        if (retry === 'retry') {
          batch.sentAgain(sending);
          continue;
        }
        if (retry === 'stop') {
          batch.stop(pending, this.stats);
          break;
        }
        batch.failAll(pending, sent.status, sent.message);
        break;
      }

      const again = batch.settle(sending, sent.entries, attempts, this.options.retry);
      pending = [...again.indexes, ...later];
      if (again.indexes.length === 0) {
        continue;
      }
      batch.sentAgain(again.indexes);
      const retry = await this.mayRetry(again.status, attempts, `${again.indexes.length} entries (${again.status})`);
      if (retry === 'stop') {
        batch.stop(pending, this.stats);
        break;
      }
      if (retry === 'give-up') {
        batch.finalize(again.indexes, sent.entries, sending);
        pending = later;
      }
    }
    return batch.done();
  }

  /** The first rows that fit in one request body (at least one: a row too large alone fails at the server). */
  private fitting(rows: readonly OutgoingRow[], candidates: readonly number[], batch: BatchInProgress): number[] {
    let bytes = 64;
    const fit: number[] = [];
    for (const i of candidates) {
      bytes += batch.entryOf(i).length + 1;
      if (fit.length > 0 && bytes > this.options.maxRequestBytes) {
        break;
      }
      fit.push(i);
    }
    return fit;
  }

  /** The retry decision for a status, with the deadline turned into 'stop'. */
  private async mayRetry(status: number, attempts: Attempts, what: string): Promise<'retry' | 'stop' | 'give-up'> {
    try {
      return (await this.retrier.waitToRetry(status, attempts, what)) ? 'retry' : 'give-up';
    } catch (err) {
      if (err instanceof OutOfTimeError) {
        this.options.log(`${err.message}: stopping`);
        return 'stop';
      }
      throw err;
    }
  }

  /** One request for some of the batch's rows. */
  private async send(
    rows: readonly OutgoingRow[],
    sending: readonly number[],
    batch: BatchInProgress
  ): Promise<{ kind: 'answered'; entries: BundleEntry[] } | { kind: 'failed'; status: number; message: string }> {
    const body = batchBody(sending.map((i) => batch.entryOf(i)));
    const before = this.link.quota();
    let response: Bundle;
    try {
      this.stats.requests++;
      // The same request as executeBatch, with the body already serialised; retries are ours.
      response = await this.medplum.post(this.medplum.fhirUrl(), body, ContentType.FHIR_JSON, {
        maxRetries: 0,
        cache: 'no-cache',
      });
    } catch (err) {
      const status = statusOf(err);
      if (status === undefined) {
        throw err; // not an answer from the server: a bug, not a row problem
      }
      return { kind: 'failed', status, message: normalizeErrorString(err) };
    }
    const entries = response.entry ?? [];
    const writes = sending.reduce((n, i, position) => {
      const status = entries[position]?.response?.status ?? '';
      return status.startsWith('429') ? n : n + rows[i].writes;
    }, 0);
    this.quota.learn(before, this.link.quota(), writes, 0);
    return { kind: 'answered', entries };
  }
}

/** The results of one batch as its requests come back. */
class BatchInProgress {
  private readonly results: (EntryResult | undefined)[];
  /** Rows already sent once: sent again in their retry form. */
  private readonly resent = new Set<number>();

  constructor(private readonly rows: readonly OutgoingRow[]) {
    this.results = new Array(rows.length);
  }

  /** The bytes to send for a row now. */
  entryOf(i: number): Uint8Array {
    const row = this.rows[i];
    return this.resent.has(i) && row.retryEntry ? row.retryEntry : row.entry;
  }

  sentAgain(indexes: readonly number[]): void {
    indexes.forEach((i) => this.resent.add(i));
  }

  /**
   * Takes the answers for the rows sent; returns the ones to send again and the status that
   * decides how long to wait (429 first: its wait covers the others).
   */
  settle(sending: readonly number[], entries: BundleEntry[], attempts: Attempts, policy: RetryPolicy): { indexes: number[]; status: number } {
    const again: number[] = [];
    let status = 0;
    sending.forEach((rowIndex, position) => {
      const entry = entries[position];
      const entryStatus = Number(entry?.response?.status?.split(' ')[0] ?? 0);
      const kind = failureKind(entryStatus);
      const worthAnother = kind === 'rate-limited' || attempts.failed + 1 < policy.maxAttempts;
      if (entry && kind !== 'final' && entryStatus !== 0 && worthAnother) {
        again.push(rowIndex);
        status = status === 429 ? 429 : entryStatus;
      } else if (!entry) {
        this.results[rowIndex] = { kind: 'request-failed', status: 0, message: 'the server sent no response entry' };
      } else {
        this.results[rowIndex] = { kind: 'response', entry };
      }
    });
    return { indexes: again, status };
  }

  /** Entries whose retries are used up keep their last answer. */
  finalize(indexes: readonly number[], entries: BundleEntry[], sending: readonly number[]): void {
    for (const rowIndex of indexes) {
      const entry = entries[sending.indexOf(rowIndex)];
      this.results[rowIndex] = { kind: 'response', entry };
    }
  }

  failAll(indexes: readonly number[], status: number, message: string): void {
    for (const i of indexes) {
      this.results[i] = { kind: 'request-failed', status, message };
    }
  }

  stop(indexes: readonly number[], stats: ExecutorStats): void {
    for (const i of indexes) {
      this.results[i] = { kind: 'stopped' };
    }
    stats.stopped += indexes.length;
  }

  done(): ExecutedBatch {
    return { results: this.results as EntryResult[] };
  }
}
