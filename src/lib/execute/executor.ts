import type { MedplumClient } from '@medplum/core';
import { ContentType, normalizeErrorString } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import type { PlannedRow } from '../bundles/batch';
import { batchBody, probeSearchUrls, unitWrites, writeKey } from '../bundles/batch';
import type { Clock, Deadline } from './clock';
import { deadlineAt, NO_DEADLINE, systemClock } from './clock';
import { OutOfTimeError, QuotaGovernor } from './quota';
import type { Attempts, RetryPolicy, RetryStats } from './retry';
import { DEFAULT_RETRY_POLICY, failureKind, freshAttempts, Retrier } from './retry';
import type { ServerLink } from './server-link';
import { linkTo, statusOf } from './server-link';

export { DEFAULT_RETRY_POLICY } from './retry';
export type { RetryPolicy } from './retry';

export interface ExecutorOptions {
  retry: RetryPolicy;
  clock: Clock;
  /** No request is started, and no wait is begun, that would end after this. */
  deadline: Deadline;
  random: () => number;
  log: (line: string) => void;
}

/** What became of one row's entry. */
export type EntryResult =
  | { kind: 'response'; entry: BundleEntry }
  | { kind: 'request-failed'; status: number; message: string }
  /** Not written before the deadline: the row is left for the next run. */
  | { kind: 'stopped' };

export interface ExecutedBatch {
  results: EntryResult[];
  /**
   * What the probe saw before this import first sent each write, by write key: a version, or
   * null when the resource did not exist. Keys the probe could not read are absent.
   */
  before: Map<string, string | null>;
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
 * Conditional PUTs are idempotent, so re-sending an entry that may have landed is safe.
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

  /** Runs one read or write with the retry policy (see Retrier.run). */
  retrying<T>(what: string, request: () => Promise<T>): Promise<T> {
    return this.retrier.run(what, request);
  }

  async execute(rows: readonly PlannedRow[]): Promise<ExecutedBatch> {
    const batch = new BatchInProgress(rows);
    const attempts = freshAttempts();
    let pending = rows.map((_, i) => i);

    while (pending.length > 0) {
      const admitted = await this.quota.admit(
        pending.map((i) => unitWrites(rows[i].unit).length),
        probeSearchUrls(pending.map((i) => rows[i])).length,
        this.deadline
      );
      if (admitted === 0 || this.outOfTime()) {
        batch.stop(pending, this.stats);
        break;
      }
      const sending = pending.slice(0, admitted);
      const later = pending.slice(admitted);
      const sent = await this.send(rows, sending, batch);
      if (sent.kind === 'failed') {
        const retry = await this.mayRetry(sent.status, attempts, `batch of ${sending.length} rows`);
        if (retry === 'retry') {
          continue;
        }
        if (retry === 'stop') {
          batch.stop(pending, this.stats);
          break;
        }
        batch.failAll(pending, sent.status, sent.message);
        break;
      }

      const again = batch.settle(sending, sent.entries, sent.offset, attempts, this.options.retry);
      pending = [...again.indexes, ...later];
      if (again.indexes.length === 0) {
        continue;
      }
      const retry = await this.mayRetry(again.status, attempts, `${again.indexes.length} entries (${again.status})`);
      if (retry === 'stop') {
        batch.stop(pending, this.stats);
        break;
      }
      if (retry === 'give-up') {
        batch.finalize(again.indexes, sent.entries, sent.offset, sending);
        pending = later;
      }
    }
    return batch.done();
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

  /** One request for some of the batch's rows: the probe first, then their entries. */
  private async send(
    rows: readonly PlannedRow[],
    sending: readonly number[],
    batch: BatchInProgress
  ): Promise<{ kind: 'answered'; entries: BundleEntry[]; offset: number } | { kind: 'failed'; status: number; message: string }> {
    const { body, probed, probeSearches } = batchBody(sending.map((i) => rows[i]));
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
    const offset = probed ? 1 : 0;
    if (probed) {
      batch.readProbe(entries[0], sending);
    }
    const writes = sending.reduce((n, i, position) => {
      const status = entries[position + offset]?.response?.status ?? '';
      return status.startsWith('429') ? n : n + unitWrites(rows[i].unit).length;
    }, 0);
    this.quota.learn(before, this.link.quota(), writes, probeSearches);
    return { kind: 'answered', entries, offset };
  }
}

/** The results of one batch as its requests come back. */
class BatchInProgress {
  private readonly results: (EntryResult | undefined)[];
  private readonly before = new Map<string, string | null>();

  constructor(private readonly rows: readonly PlannedRow[]) {
    this.results = new Array(rows.length);
  }

  /**
   * Records the probe's view of the rows being sent. Only the first view of a key counts: a
   * re-sent row's probe would see what an earlier attempt (whose answer was lost) wrote.
   */
  readProbe(entry: BundleEntry | undefined, sending: readonly number[]): void {
    const inner = (entry?.resource as Bundle | undefined)?.entry;
    if (!entry?.response?.status?.startsWith('2') || !inner) {
      return;
    }
    const seen = new Map<string, string>();
    for (const searchEntry of inner) {
      const searchset = searchEntry.resource as Bundle | OperationOutcome | undefined;
      if (searchset?.resourceType !== 'Bundle' || searchset.link?.some((l) => l.relation === 'next')) {
        return; // a search failed or was cut short: the versions are unknown
      }
      for (const match of searchset.entry ?? []) {
        const resource = match.resource;
        const versionId = resource?.meta?.versionId;
        if (!resource || !versionId) {
          return;
        }
        const identifiers = 'identifier' in resource ? [resource.identifier].flat() : [];
        for (const identifier of identifiers) {
          seen.set(`${resource.resourceType}|${identifier?.system}|${identifier?.value}`, versionId);
        }
      }
    }
    for (const i of sending) {
      for (const key of unitWrites(this.rows[i].unit).map(writeKey)) {
        if (!this.before.has(key)) {
          this.before.set(key, seen.get(key) ?? null);
        }
      }
    }
  }

  /**
   * Takes the answers for the rows sent; returns the ones to send again and the status that
   * decides how long to wait (429 first: its wait covers the others).
   */
  settle(
    sending: readonly number[],
    entries: BundleEntry[],
    offset: number,
    attempts: Attempts,
    policy: RetryPolicy
  ): { indexes: number[]; status: number } {
    const again: number[] = [];
    let status = 0;
    sending.forEach((rowIndex, position) => {
      const entry = entries[position + offset];
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
  finalize(indexes: readonly number[], entries: BundleEntry[], offset: number, sending: readonly number[]): void {
    for (const rowIndex of indexes) {
      const entry = entries[sending.indexOf(rowIndex) + offset];
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
    return { results: this.results as EntryResult[], before: this.before };
  }
}
