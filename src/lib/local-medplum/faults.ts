import { conflict, deepClone, OperationOutcomeError, tooManyRequests } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';

/**
 * Failures the local server can inject, all decided by seeded generators so that the same seed and the
 * same sequence of requests give the same faults.
 *
 * Draw order. Each request draws eight values from the request stream, whatever the rates and whatever
 * happens to the request: network-before, network-after, gateway, gateway status, rate limit, rate
 * limit reset, server error, server error status. The first of these that fires wins, in the order
 * network-before, gateway error, rate limit, server error; network-after applies to processed write
 * requests only. Each repository write (create, update, patch, delete; every batch entry's write counts)
 * draws two values from a separate write stream: the injected conflict, then the concurrency conflict.
 * The two streams are separate so that the number of writes in a request does not shift the faults of
 * later requests.
 */
export interface FaultOptions {
  /** Seed of the pseudo-random generators behind the rates (default 1). */
  readonly seed?: number;
  /** Share of requests (0..1) whose fetch rejects with `TypeError('fetch failed')` before reaching the server. */
  readonly networkErrorRate?: number;
  /**
   * Share of requests (0..1) answered by the gateway in front of the server (nginx, an AWS ALB) with 502
   * or 504 and an HTML page (`content-type: text/html`); nothing is processed. MedplumClient turns the
   * page into an OperationOutcome whose getStatus() is 400, with the HTML as its text.
   */
  readonly gatewayErrorRate?: number;
  /**
   * Share of requests (0..1) answered 429 `throttled` with `RateLimit: "fhirInteractions";r=0;t=<1..60>`
   * before anything is processed: another client of the same user has spent the quota.
   */
  readonly rateLimitRate?: number;
  /**
   * Share of requests (0..1) answered before anything is processed with 500 (code `exception`) or 503
   * (code `transient`). Core's getStatus() reads the 503's outcome as 400: classify by the HTTP status.
   */
  readonly serverErrorRate?: number;
  /**
   * Share of write requests (POST, PUT, PATCH, DELETE) that the server fully processes but whose
   * response is lost: the fetch rejects with `TypeError('fetch failed')` after the writes happened.
   */
  readonly networkErrorAfterWriteRate?: number;
  /**
   * Share of repository writes (0..1), standalone or inside a batch or transaction, that fail with 409
   * "could not serialize access due to read/write dependencies among transactions": a batch entry answers
   * 409, a transaction is rolled back whole.
   */
  readonly conflictRate?: number;
}

/** What happens to one request, decided before it is processed. */
export type FaultDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'network-before' }
  | { readonly kind: 'network-after' }
  | { readonly kind: 'gateway-error'; readonly status: 502 | 504 }
  | { readonly kind: 'rate-limited'; readonly secondsToReset: number }
  | { readonly kind: 'server-error'; readonly status: 500 | 503; readonly outcome: OperationOutcome };

/** PostgreSQL's message for a serialization failure (SQLSTATE 40001), which the server answers as 409. */
export const SERIALIZATION_FAILURE_MESSAGE = 'could not serialize access due to read/write dependencies among transactions';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Applies one set of `FaultOptions`: fault draws per request and per write. */
export class FaultInjector {
  private readonly options: FaultOptions;
  private readonly requestRandom: () => number;
  private readonly writeRandom: () => number;

  constructor(options: FaultOptions | undefined) {
    this.options = options ?? {};
    const seed = this.options.seed ?? 1;
    this.requestRandom = mulberry32(seed);
    this.writeRandom = mulberry32((seed ^ 0x9e3779b9) >>> 0);
  }

  /** Decides the fate of one request (see FaultOptions for the draw order). */
  decide(method: string): FaultDecision {
    const draw = this.requestRandom;
    const network = draw();
    const after = draw();
    const gateway = draw();
    const gatewayStatus = draw();
    const rateLimit = draw();
    const rateLimitReset = draw();
    const server = draw();
    const serverStatus = draw();
    if (network < (this.options.networkErrorRate ?? 0)) {
      return { kind: 'network-before' };
    }
    if (gateway < (this.options.gatewayErrorRate ?? 0)) {
      return { kind: 'gateway-error', status: gatewayStatus < 0.5 ? 502 : 504 };
    }
    if (rateLimit < (this.options.rateLimitRate ?? 0)) {
      return { kind: 'rate-limited', secondsToReset: 1 + Math.floor(rateLimitReset * 60) };
    }
    if (server < (this.options.serverErrorRate ?? 0)) {
      return serverStatus < 0.5
        ? { kind: 'server-error', status: 500, outcome: simulatedOutcome('exception', 'Internal server error') }
        : { kind: 'server-error', status: 503, outcome: simulatedOutcome('transient', 'Service unavailable') };
    }
    if (WRITE_METHODS.has(method) && after < (this.options.networkErrorAfterWriteRate ?? 0)) {
      return { kind: 'network-after' };
    }
    return { kind: 'none' };
  }

  /**
   * Called before each repository write. Throws the server's 409 when the injected conflict rate or the
   * concurrency conflict probability of the current request fires.
   */
  beforeWrite(concurrencyConflictProbability: number): void {
    const injected = this.writeRandom();
    const concurrent = this.writeRandom();
    if (injected < (this.options.conflictRate ?? 0) || concurrent < concurrencyConflictProbability) {
      throw new OperationOutcomeError(conflict(SERIALIZATION_FAILURE_MESSAGE, '40001'));
    }
  }
}

/** A 429 as the server sends it when the quota is spent, for the injected rate limit. */
export function throttledOutcome(msBeforeNext: number, limit: number): OperationOutcome {
  const outcome = deepClone(tooManyRequests);
  outcome.issue[0].diagnostics = JSON.stringify({
    _remainingPoints: 0,
    _msBeforeNext: msBeforeNext,
    _consumedPoints: limit,
    _isFirstInDuration: false,
    limit,
  });
  return outcome;
}

/**
 * The share of conditional-write entries that a real server (5.0.10, 2 cores) answered 409 after its own
 * retry, by the number of write requests in flight at once: 3% with 2, 14% with 4; 3 is interpolated.
 */
export function concurrencyConflictProbability(writeRequestsInFlight: number): number {
  if (writeRequestsInFlight >= 4) {
    return 0.14;
  }
  if (writeRequestsInFlight === 3) {
    return 0.08;
  }
  return writeRequestsInFlight === 2 ? 0.03 : 0;
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
