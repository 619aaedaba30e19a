import { deepClone, OperationOutcomeError, tooManyRequests } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';

/** Failures the local server can inject, all decided by a seeded generator so runs repeat exactly. */
export interface FaultOptions {
  /** Seed of the pseudo-random generator behind the error rates (default 1). */
  readonly seed?: number;
  /**
   * Writes (create, update, delete; each batch entry counts) allowed per minute. The server charges
   * 100 points per write against a 50,000-point minute, i.e. 500 writes. Over the quota a standalone
   * write gets 429; in a batch, the entry that hits it and every later entry get 429.
   */
  readonly writeQuotaPerMinute?: number;
  /** Share of requests (0..1) answered 500 or 503 with an OperationOutcome before anything is processed. */
  readonly serverErrorRate?: number;
  /** Share of requests (0..1) whose fetch rejects with `TypeError('fetch failed')` before reaching the server. */
  readonly networkErrorRate?: number;
  /**
   * Share of write requests (POST, PUT, PATCH, DELETE) that the server fully processes but whose
   * response is lost: the fetch rejects with `TypeError('fetch failed')` after the writes happened.
   */
  readonly networkErrorAfterWriteRate?: number;
  /** Clock in epoch milliseconds for the quota window (default `Date.now`). */
  readonly now?: () => number;
}

/** What happens to one request, decided before it is processed. */
export type FaultDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'network-before' }
  | { readonly kind: 'network-after' }
  | { readonly kind: 'server-error'; readonly status: 500 | 503; readonly outcome: OperationOutcome };

/** The server's cost of one write in quota points, and the quota window. */
export const WRITE_COST_POINTS = 100;
const WINDOW_MS = 60_000;

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Applies one set of `FaultOptions`: error draws per request, and the write quota. */
export class FaultInjector {
  private readonly options: FaultOptions;
  private readonly random: () => number;
  private readonly now: () => number;
  private windowStart: number | undefined;
  private used = 0;

  constructor(options: FaultOptions | undefined) {
    this.options = options ?? {};
    this.random = mulberry32(this.options.seed ?? 1);
    this.now = this.options.now ?? Date.now;
  }

  /**
   * Decides the fate of one request. Always draws the same number of values so that a given seed
   * yields the same sequence of faults whatever the rates are.
   */
  decide(method: string): FaultDecision {
    const network = this.random();
    const after = this.random();
    const server = this.random();
    const which = this.random();
    if (network < (this.options.networkErrorRate ?? 0)) {
      return { kind: 'network-before' };
    }
    if (server < (this.options.serverErrorRate ?? 0)) {
      return which < 0.5
        ? { kind: 'server-error', status: 500, outcome: simulatedOutcome('exception', 'Internal server error') }
        : { kind: 'server-error', status: 503, outcome: simulatedOutcome('transient', 'Service unavailable') };
    }
    if (WRITE_METHODS.has(method) && after < (this.options.networkErrorAfterWriteRate ?? 0)) {
      return { kind: 'network-after' };
    }
    return { kind: 'none' };
  }

  /** Charges one write against the quota; throws the server's 429 OperationOutcome when it is spent. */
  consumeWrite(): void {
    const quota = this.options.writeQuotaPerMinute;
    if (quota === undefined) {
      return;
    }
    this.rollWindow();
    if (this.used >= quota) {
      const outcome = deepClone(tooManyRequests);
      outcome.issue[0].diagnostics = JSON.stringify({
        remainingPoints: 0,
        msBeforeNext: this.msBeforeReset(),
        limit: quota * WRITE_COST_POINTS,
      });
      throw new OperationOutcomeError(outcome);
    }
    this.used++;
  }

  /**
   * The `RateLimit` header the server sends on FHIR responses (`"fhirInteractions";r=<points left>;t=<seconds
   * to reset>`), which MedplumClient.rateLimitStatus() parses. Undefined when no quota is configured.
   */
  rateLimitHeader(): string | undefined {
    const quota = this.options.writeQuotaPerMinute;
    if (quota === undefined) {
      return undefined;
    }
    this.rollWindow();
    const remaining = Math.max(quota - this.used, 0) * WRITE_COST_POINTS;
    const seconds = Math.ceil(this.msBeforeReset() / 1000);
    return `"fhirInteractions";r=${remaining};t=${seconds}`;
  }

  /** Fixed one-minute windows, the first starting at the first request, like the server's rate limiter. */
  private rollWindow(): void {
    const now = this.now();
    if (this.windowStart === undefined || now >= this.windowStart + WINDOW_MS) {
      this.windowStart = now;
      this.used = 0;
    }
  }

  private msBeforeReset(): number {
    return this.windowStart === undefined ? WINDOW_MS : Math.max(this.windowStart + WINDOW_MS - this.now(), 0);
  }
}

function simulatedOutcome(code: 'exception' | 'transient', text: string): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, details: { text }, diagnostics: 'Injected by LocalMedplum faults' }],
  };
}

/** A small, fast, seedable PRNG (mulberry32); returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
