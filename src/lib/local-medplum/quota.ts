import { deepClone, OperationOutcomeError, tooManyRequests } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { LocalClock } from './clock';

/**
 * What the server charges per repository interaction, in quota points (packages/server/src/fhir/fhirquota.ts,
 * `FhirQuotaCost`). The repository charges them: every create, update (even one that changes nothing),
 * patch and delete is a WRITE; every search is a SEARCH whatever it returns, including the searches the
 * batch processor makes to resolve conditional URLs and those behind each conditional reference in a body.
 */
export const FHIR_QUOTA_COSTS = {
  READ: 1,
  HISTORY: 10,
  SEARCH: 20,
  WRITE: 100,
} as const;

export type FhirInteraction = keyof typeof FHIR_QUOTA_COSTS;

/** The server's window: `FHIR_RATE_LIMIT_DURATION` = 60 s, per user. */
export const FHIR_QUOTA_WINDOW_MS = 60_000;

/**
 * The per-user FHIR quota as the server enforces it with rate-limiter-flexible: a fixed 60 s window
 * that starts at the first charge and ends 60 s later (a new one starts at the first charge after that).
 * A charge that would take the window's total over the limit is refused with the server's 429, and so is
 * every later charge in the same window (the server keeps the user blocked in memory until the reset).
 *
 * Without a limit nothing is refused and no `RateLimit` header is sent, but points are still counted.
 */
export class FhirQuota {
  private pointsPerWindow: number | undefined;
  private readonly clock: LocalClock;
  private windowStart: number | undefined;
  private consumed = 0;
  private blocked = false;
  private accepted = 0;

  constructor(limit: number | undefined, clock: LocalClock) {
    this.pointsPerWindow = limit;
    this.clock = clock;
  }

  /** Points per window, or undefined without a quota. */
  get limit(): number | undefined {
    return this.pointsPerWindow;
  }

  /** Points of every accepted charge since construction (a refused charge is not counted). */
  get pointsCharged(): number {
    return this.accepted;
  }

  /** Replaces the limit (undefined: no quota) and starts afresh, with no window open. */
  setLimit(limit: number | undefined): void {
    this.pointsPerWindow = limit;
    this.windowStart = undefined;
    this.consumed = 0;
    this.blocked = false;
  }

  /** Charges one interaction; throws the server's 429 OperationOutcomeError when the quota is spent. */
  charge(interaction: FhirInteraction): void {
    const points = FHIR_QUOTA_COSTS[interaction];
    if (this.pointsPerWindow === undefined) {
      this.accepted += points;
      return;
    }
    this.rollWindow();
    if (this.blocked || this.consumed + points > this.pointsPerWindow) {
      if (!this.blocked) {
        // rate-limiter-flexible counts the refused consumption too; only the diagnostics show it.
        this.consumed += points;
        this.blocked = true;
      }
      throw new OperationOutcomeError(this.tooManyRequestsOutcome());
    }
    this.consumed += points;
    this.accepted += points;
  }

  /**
   * The server's `RateLimit` header value (`"fhirInteractions";r=<points left>;t=<seconds to reset>`),
   * which MedplumClient.rateLimitStatus() parses; undefined without a quota. Before the first charge of
   * a window the full quota is left and the reset is a whole window away.
   */
  rateLimitHeader(): string | undefined {
    if (this.pointsPerWindow === undefined) {
      return undefined;
    }
    const open = this.windowStart !== undefined && !this.windowEnded();
    const remaining = open ? Math.max(this.pointsPerWindow - this.consumed, 0) : this.pointsPerWindow;
    const seconds = Math.ceil((open ? this.msBeforeNext() : FHIR_QUOTA_WINDOW_MS) / 1000);
    return `"fhirInteractions";r=${remaining};t=${seconds}`;
  }

  private rollWindow(): void {
    if (this.windowStart === undefined || this.windowEnded()) {
      this.windowStart = this.clock.now();
      this.consumed = 0;
      this.blocked = false;
    }
  }

  private windowEnded(): boolean {
    return this.clock.now() >= (this.windowStart as number) + FHIR_QUOTA_WINDOW_MS;
  }

  private msBeforeNext(): number {
    return Math.max((this.windowStart as number) + FHIR_QUOTA_WINDOW_MS - this.clock.now(), 0);
  }

  /**
   * The server builds the diagnostics as `JSON.stringify({ ...rateLimiterRes, limit })`; spreading a
   * RateLimiterRes copies its underscored fields, so those are the names on the wire. (Core's
   * `getRateLimitReset` looks for `msBeforeNext` and does not find it: read the RateLimit header instead.)
   */
  private tooManyRequestsOutcome(): OperationOutcome {
    const outcome = deepClone(tooManyRequests);
    outcome.issue[0].diagnostics = JSON.stringify({
      _remainingPoints: 0,
      _msBeforeNext: this.msBeforeNext(),
      _consumedPoints: this.consumed,
      _isFirstInDuration: false,
      limit: this.pointsPerWindow,
    });
    return outcome;
  }
}
