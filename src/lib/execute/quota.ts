import type { Clock } from './clock';
import type { QuotaReading, ServerLink } from './server-link';

/** Points a write costs before anything is measured: a conditional PUT inside a batch (facts file). */
export const INITIAL_POINTS_PER_WRITE = 140;
/** A search, whatever it returns. */
export const POINTS_PER_SEARCH = 20;
/**
 * Kept back from the rows: the bookkeeping of a run costs points too (a progress save and the
 * final one are writes, asking Medplum to continue creates an AsyncJob), and a run that spent
 * them could not record where it stopped.
 */
export const RESERVED_POINTS = 600;
/** Rows sent before anything is known of the quota: the answer tells the rest. */
export const FIRST_REQUEST_ROWS = 50;
/** Fewer points than this left: a job is not started (its claim and saves would eat the rest). */
export const POINTS_TO_START_WORK = RESERVED_POINTS + 1000;
/** Margin after a window's announced reset before the next request. */
const RESET_MARGIN_MS = 250;
/** Kept before the deadline when waiting it out: the run still saves its Task. */
const DEADLINE_SLACK_MS = 500;

/** The invocation's time budget ends before the work (or the wait for it) could be done. */
export class OutOfTimeError extends Error {
  constructor(what: string) {
    super(`time budget used up ${what}`);
    this.name = 'OutOfTimeError';
  }
}

/**
 * Paces requests by what the server reports: the RateLimit header's points left and reset time,
 * and the points a write really costs here, measured from the header before and after each batch.
 *
 * - A batch is sized to the points left (a run's first batch too: its claim of the job already
 *   brought a reading), so the quota is not overshot into 429s.
 * - When the points left allow no row, it waits once for the window's reset, and treats the old
 *   reading as spent: after the reset it sizes by the largest window seen, not by the stale header.
 * - A wait that would end after the deadline is not started: `admit` returns 0 and the caller
 *   checkpoints.
 */
export class QuotaGovernor {
  private pointsPerWrite = INITIAL_POINTS_PER_WRITE;
  waits = 0;

  constructor(
    private readonly link: ServerLink,
    private readonly clock: Clock,
    private readonly log: (line: string) => void = () => undefined
  ) {}

  /** The measured cost of one write, in points. */
  get costPerWrite(): number {
    return this.pointsPerWrite;
  }

  /** The current reading when its window has not ended yet. */
  private fresh(): QuotaReading | undefined {
    const reading = this.link.quota();
    return reading && this.clock.now() < reading.resetAt ? reading : undefined;
  }

  /** Points available now: the fresh reading, else a new window's worth, else unlimited. */
  private available(): number {
    const reading = this.fresh();
    if (reading) {
      return reading.remaining;
    }
    // After a reset: about the largest window seen (nothing known when only spent windows were seen).
    return this.link.largestQuotaSeen > 0 ? this.link.largestQuotaSeen : Number.POSITIVE_INFINITY;
  }

  /** The server never answered through this link yet: its quota is unknown. */
  private get blind(): boolean {
    return !this.link.answered;
  }

  /**
   * How many of the rows (given by the writes each makes) may go in the next request, plus
   * `searches` searches it carries. Waits for the quota's reset when none may; returns 0 when that
   * wait would pass the deadline.
   */
  async admit(writesPerRow: readonly number[], searches: number, deadline: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const count = this.rowsAffordable(writesPerRow, searches, this.available());
      if (count > 0) {
        return count;
      }
      const reading = this.fresh();
      if (!reading || attempt > 0) {
        // A new window cannot fit even one row at the measured cost: send one and let the server say.
        return Math.min(1, writesPerRow.length);
      }
      if ((await this.waitForReset(deadline)) === 'past-deadline') {
        return 0;
      }
    }
  }

  private rowsAffordable(writesPerRow: readonly number[], searches: number, available: number): number {
    if (!Number.isFinite(available)) {
      return this.blind ? Math.min(FIRST_REQUEST_ROWS, writesPerRow.length) : writesPerRow.length;
    }
    let points = RESERVED_POINTS + searches * POINTS_PER_SEARCH;
    let count = 0;
    for (const writes of writesPerRow) {
      points += writes * this.pointsPerWrite;
      if (points > available) {
        break;
      }
      count++;
    }
    return count;
  }

  /**
   * Waits until the current window resets. Does not wait when the server gave no current reading
   * ('no-reading'). When the reset comes after the deadline ('past-deadline') it waits out the
   * time left instead: with the quota spent there is nothing else to do, and the next run (which
   * this one starts when it stops) then begins that much closer to the reset.
   */
  async waitForReset(deadline: number): Promise<'waited' | 'no-reading' | 'past-deadline'> {
    const reading = this.fresh();
    if (!reading) {
      return 'no-reading';
    }
    const until = reading.resetAt + RESET_MARGIN_MS;
    if (until > deadline) {
      // Nothing else can be done with the quota spent: use the time left, so that the run that
      // continues this one (started when this one ends) is closer to the reset.
      const rest = deadline - this.clock.now() - DEADLINE_SLACK_MS;
      if (Number.isFinite(rest) && rest > 0) {
        this.log(`pacing: the quota resets after this run's time budget; waiting out the ${Math.round(rest / 1000)} s left`);
        await this.clock.sleep(rest);
      }
      return 'past-deadline';
    }
    this.waits++;
    const ms = Math.max(0, until - this.clock.now());
    this.log(`pacing: ${reading.remaining} quota points left, waiting ${Math.round(ms / 1000)} s for the reset`);
    await this.clock.sleep(ms);
    return 'waited';
  }

  /**
   * Before a job starts (claiming it and saving it cost points too): waits for the quota's reset
   * when too little is left. OutOfTimeError when the reset comes after the deadline (the time
   * left is waited out first, see waitForReset): the run ends and leaves the job to the next.
   */
  async ensureRoomToStart(deadline: number): Promise<void> {
    const reading = this.fresh();
    if (!reading || reading.remaining >= POINTS_TO_START_WORK) {
      return;
    }
    if ((await this.waitForReset(deadline)) === 'past-deadline') {
      throw new OutOfTimeError(`before the FHIR quota (${reading.remaining} points left) resets`);
    }
  }

  /**
   * Learns the cost of a write from the readings around a request that made `writes` writes and
   * `searches` searches. Readings from different windows, or disturbed by other clients (points
   * rising), teach nothing.
   */
  learn(before: QuotaReading | undefined, after: QuotaReading | undefined, writes: number, searches: number): void {
    if (!before || !after || after.at <= before.at || writes <= 0) {
      return;
    }
    const sameWindow = Math.abs(after.resetAt - before.resetAt) < 2000;
    const spent = before.remaining - after.remaining - searches * POINTS_PER_SEARCH;
    if (!sameWindow || spent <= 0 || after.remaining <= 0) {
      return;
    }
    const sample = Math.min(1000, Math.max(1, spent / writes));
    // Lean towards the higher of the two: underestimating costs a 429 and a lost window.
    this.pointsPerWrite = sample > this.pointsPerWrite ? sample : (this.pointsPerWrite + sample) / 2;
  }
}
