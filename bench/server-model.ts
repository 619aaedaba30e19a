/**
 * Server time for speed comparisons on the local Medplum, calibrated to the real Medplum server's
 * measurements (/work/shared/medplum-facts.md and issue 11: Medplum 5.0.10, PostgreSQL, client and
 * server on one 2-core box, batches of 500). See bench/README.md, "Calibration".
 *
 * The local Medplum answers in a fraction of a millisecond per entry, so its own speed says nothing
 * about a real server. Its `serverTime` option adds `perRequestMs + perEntryMs × entries` on its
 * clock. That flat per-entry cost cannot match the real server for both sides of this comparison:
 * 500 new conditional PUTs take ~2.7 s, the same 500 unchanged ~1.1 s, and a search for 500
 * identifiers (one "entry") ~0.11 s. So the per-request cost goes through `serverTime`, and the
 * per-entry cost depends on what the entry made the server do, counted from the local Medplum's own
 * quota accounting (the interactions the real server's repository charges): searches, writes that
 * store a version, updates that change nothing, reads, and the identifiers a lookup asks for.
 */
import type { LocalMedplum, LocalMedplumOptions } from '../src/lib/local-medplum';
import { createLocalMedplum } from '../src/lib/local-medplum';
import type { FhirInteraction } from '../src/lib/local-medplum/quota';

/** Modeled server processing time, in milliseconds. */
export interface ServerCosts {
  /** Every request: HTTP, authentication, the server's middleware (passed as serverTime.perRequestMs). */
  perRequestMs: number;
  /** Each search the repository runs (SEARCH, 20 points), inside a batch or standalone. */
  perSearchMs: number;
  /** A standalone search, per identifier asked for or resource returned, whichever is more. */
  perSearchRowMs: number;
  /** A create or an update that stores a new version (WRITE, 100 points). */
  perStoredWriteMs: number;
  /** An update that changes nothing: still charged 100 points, nothing stored. */
  perUnchangedWriteMs: number;
  /** A read (READ, 1 point). */
  perReadMs: number;
}

/**
 * Fitted to the real server (rows/s of batches of 500, from the facts file and issue 11):
 *  - plain POST creates, 249 rows/s                      -> a stored write: 4.0 ms
 *  - POST with ifNoneExist, already there, 709 rows/s    -> 2 searches = 1.41 ms: a search 0.7 ms
 *  - conditional PUT, unchanged, 422-478 rows/s (~2.2 ms) -> a search + an unchanged update: 1.5 ms for the update
 *  - one upsertResource per row, new, 90 rows/s (11.1 ms) -> a request 11.1 - 0.7 - 4.0 = 6.4: 6 ms
 *  - 2,000 identifiers looked up by 4 POST _search, 0.44 s -> 110 ms per 500: (110 - 6 - 0.7) / 500 = 0.2 ms each
 * Checked against what was not fitted: conditional PUT batches of new rows, 146-201 rows/s measured,
 * 185 modeled (6 + 500 × (2 × 0.7 + 4.0) ms per batch); POST with ifNoneExist, new, 220 measured, 185 modeled.
 */
export const CALIBRATED_COSTS: ServerCosts = {
  perRequestMs: 6,
  perSearchMs: 0.7,
  perSearchRowMs: 0.2,
  perStoredWriteMs: 4.0,
  perUnchangedWriteMs: 1.5,
  perReadMs: 0.5,
};

/**
 * A clock for speed runs: the client's own work counts in real time, the local Medplum's real
 * processing does not (it is replaced by the modeled server time, spent with `sleep`, which
 * returns at once). So a run takes real seconds but measures `client time + modeled server time`.
 */
export class ModeledClock {
  private readonly origin = Date.parse('2026-01-01T00:00:00Z');
  private readonly realStart = performance.now();
  private simulatedMs = 0;
  private excludedMs = 0;
  private depth = 0;
  private enteredAt = 0;

  now(): number {
    const real = this.depth > 0 ? this.enteredAt : performance.now();
    return this.origin + (real - this.realStart) - this.excludedMs + this.simulatedMs;
  }

  async sleep(ms: number): Promise<void> {
    if (ms > 0) {
      this.simulatedMs += ms;
    }
  }

  /** Real time from here to `leaveServer` is the local server's and is not counted. */
  enterServer(): void {
    if (this.depth++ === 0) {
      this.enteredAt = performance.now();
    }
  }

  leaveServer(): void {
    if (--this.depth === 0) {
      this.excludedMs += performance.now() - this.enteredAt;
    }
  }

  /** Modeled server time so far. */
  get serverMs(): number {
    return this.simulatedMs;
  }
}

/** What the server did for one request, and the time modeled for it. */
export interface RequestRecord {
  /** `lookup` (POST Type/_search and its next pages), `write` (a batch or transaction), `other`. */
  kind: 'lookup' | 'write' | 'other';
  searches: number;
  writeCharges: number;
  storedWrites: number;
  reads: number;
  /** For a standalone search: identifiers asked for, and resources returned. */
  identifiers: number;
  returned: number;
  /** Quota points charged, as the server counts them (stats.points). */
  points: number;
  /** Modeled server time, perRequestMs included. */
  serverMs: number;
}

export interface ModeledMedplum {
  medplum: LocalMedplum;
  clock: ModeledClock;
  /** Every request, in order. */
  requests: RequestRecord[];
}

/**
 * A fresh local Medplum whose answers take the modeled server time on a ModeledClock. The
 * interactions per request are read from the local repository's quota charges (a bench-only hook
 * on its internals: see `countCharges`), the stored versions from `stats.writes`.
 */
export function modeledMedplum(costs: ServerCosts = CALIBRATED_COSTS, options: LocalMedplumOptions = {}): ModeledMedplum {
  const clock = new ModeledClock();
  const medplum = createLocalMedplum({
    maxRetries: 0,
    ...options,
    clock,
    serverTime: { perRequestMs: costs.perRequestMs, perEntryMs: 0 },
  });
  const charges = countCharges(medplum);
  const requests: RequestRecord[] = [];
  const client = medplum.client;
  const inner = client.mockFetch.bind(client);
  client.mockFetch = async (url: string, init: RequestInit = {}): Promise<Response> => {
    clock.enterServer();
    try {
      const before = { ...charges, writes: medplum.stats.writes, points: medplum.stats.points };
      const method = (init.method ?? 'GET').toUpperCase();
      const path = url.split('?')[0];
      const lookup = path.endsWith('/_search') || (method === 'GET' && url.includes('?') && !url.includes('/$'));
      const response = await inner(url, init);
      const searches = charges.SEARCH - before.SEARCH;
      const writeCharges = charges.WRITE - before.WRITE;
      const storedWrites = medplum.stats.writes - before.writes;
      const reads = charges.READ - before.READ;
      let identifiers = 0;
      let returned = 0;
      if (lookup) {
        identifiers = identifiersAsked(url, init.body);
        returned = ((await response.clone().json()) as { entry?: unknown[] }).entry?.length ?? 0;
      }
      const extraMs =
        searches * costs.perSearchMs +
        (lookup ? Math.max(identifiers, returned) * costs.perSearchRowMs : 0) +
        storedWrites * costs.perStoredWriteMs +
        Math.max(0, writeCharges - storedWrites) * costs.perUnchangedWriteMs +
        reads * costs.perReadMs;
      await clock.sleep(extraMs);
      const isBatch = method === 'POST' && /\/fhir\/R4\/?$/.test(path);
      requests.push({
        kind: lookup ? 'lookup' : isBatch ? 'write' : 'other',
        searches,
        writeCharges,
        storedWrites,
        reads,
        identifiers,
        returned,
        points: medplum.stats.points - before.points,
        serverMs: costs.perRequestMs + extraMs,
      });
      return response;
    } finally {
      clock.leaveServer();
    }
  };
  return { medplum, clock, requests };
}

/**
 * Counts the interactions the local repository charges (what the real server's repository charges:
 * a search, a write, a read...). Reaches into the repository's hooks, which the local Medplum does
 * not expose; a refused charge (429) is not counted, as `stats.points` does not count it.
 */
function countCharges(medplum: LocalMedplum): Record<FhirInteraction, number> {
  const counts: Record<FhirInteraction, number> = { READ: 0, HISTORY: 0, SEARCH: 0, WRITE: 0 };
  const hooks = (medplum.repo as unknown as { hooks?: { charge?: (i: FhirInteraction) => void } }).hooks;
  const charge = hooks?.charge;
  if (!hooks || typeof charge !== 'function') {
    throw new Error('bench/server-model.ts: the local repository no longer has hooks.charge; update countCharges');
  }
  hooks.charge = (interaction) => {
    charge(interaction);
    counts[interaction]++;
  };
  return counts;
}

/** Identifiers in a lookup's `identifier=` OR list (form body or query), unescaped commas only. */
export function identifiersAsked(url: string, body: unknown): number {
  const text = typeof body === 'string' ? body : (url.split('?')[1] ?? '');
  const value = new URLSearchParams(text).get('identifier');
  return value ? value.split(/(?<!\\),/).length : 0;
}

/**
 * The same requests under the local Medplum's flat `serverTime` (per request + per entry, a search
 * counting one entry): for the sensitivity check in the README (how much the conclusions depend on
 * the model). Entries: the writes and unchanged updates of a batch, or 1.
 */
export function flatServerMs(requests: readonly RequestRecord[], perRequestMs: number, perEntryMs: number): number {
  return requests.reduce((ms, r) => ms + perRequestMs + perEntryMs * (r.kind === 'write' ? Math.max(1, r.writeCharges) : 1), 0);
}
