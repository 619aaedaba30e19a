import type { MedplumClient } from '@medplum/core';
import { getStatus, isOperationOutcome } from '@medplum/core';
import type { Extension, OperationOutcome } from '@medplum/fhirtypes';
import type { Clock } from './clock';
import { systemClock } from './clock';

/**
 * What the importer learns from the server's HTTP answers, which MedplumClient does not keep:
 *
 * - the HTTP status of every error. MedplumClient turns an error answer into an
 *   OperationOutcomeError built from the body alone, so a 503 whose outcome says `transient` reads
 *   as 400 through getStatus, and a gateway's 502 HTML page as a 400 "invalid". The link wraps the
 *   client's fetch and writes the real status into the outcome (an extension) before the client
 *   reads it; `statusOf(err)` reads it back. A non-FHIR error body is replaced by an outcome that
 *   describes it (never quoting it).
 * - the RateLimit header of every answer, with the time it was read, for pacing.
 *
 * The wrapped `fetch` is MedplumClient's own (a private field, present with this name in every
 * 5.x client, including the ones bot runtimes construct), so auth, headers and retries stay the
 * client's. A client without it is used as it is, with the weaker status reading.
 */

export const HTTP_STATUS_EXTENSION = 'urn:medplum-csv-import:http-status';

/** The server's FHIR quota as last reported. */
export interface QuotaReading {
  /** Points left in the current window. */
  remaining: number;
  /** When the window resets, on the importer's clock (ms since epoch). */
  resetAt: number;
  /** When the reading was taken. */
  at: number;
}

type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

interface ClientWithFetch {
  fetch?: FetchLike;
}

/**
 * Where a client keeps its link: on the client itself, under a registered symbol, so that every
 * copy of this code (a bot bundle is loaded afresh for each run) finds the one link and the
 * client's fetch is wrapped once.
 */
const LINK = Symbol.for('medplum-csv-import.server-link');

/** The link for a client, created (and its fetch wrapped) once per client. */
export function linkTo(medplum: MedplumClient, clock: Clock = systemClock): ServerLink {
  const holder = medplum as unknown as { [LINK]?: ServerLink };
  const link = holder[LINK] ?? new ServerLink(medplum, clock);
  holder[LINK] = link;
  link.clock = clock;
  return link;
}

export class ServerLink {
  private reading: QuotaReading | undefined;
  private largestRemaining = 0;
  /** Answers seen through the link: with none, nothing is known of the quota yet. */
  private answers = 0;
  private longest = 0;
  /** False when the client had no fetch to wrap: statuses then come from outcomes alone. */
  readonly instrumented: boolean;
  private readonly fetchFn: FetchLike | undefined;

  constructor(
    readonly medplum: MedplumClient,
    public clock: Clock
  ) {
    const client = medplum as unknown as ClientWithFetch;
    const original = client.fetch;
    this.instrumented = typeof original === 'function';
    if (typeof original === 'function') {
      const wrapped: FetchLike = async (url, init) => {
        const started = this.clock.now();
        // Called as MedplumClient calls it: as a method of the client.
        const response = await original.call(medplum, url, init);
        this.longest = Math.max(this.longest, this.clock.now() - started);
        this.observe(response);
        return response.status >= 400 ? withStatusInBody(response) : response;
      };
      client.fetch = wrapped;
      this.fetchFn = wrapped;
    }
  }

  /** The latest quota reading, or undefined when the server never sent one. */
  quota(): QuotaReading | undefined {
    return this.reading;
  }

  /** The most points ever seen left in a window: about what a fresh window holds. */
  get largestQuotaSeen(): number {
    return this.largestRemaining;
  }

  /** The longest a request has taken to be answered, in ms, since the link was made or `newRun`. */
  get longestRequestMs(): number {
    return this.longest;
  }

  /**
   * A new invocation begins on a client that outlived the last (on a server every invocation gets
   * its own client): its pacing starts from its own answers.
   */
  newRun(): void {
    this.longest = 0;
  }

  /** True once the link has seen an answer (with or without a RateLimit header). */
  get answered(): boolean {
    return this.answers > 0;
  }

  /**
   * A GET through the client's own fetch, with its access token, returning the raw Response (status
   * and a body stream). Only for URLs of this Medplum: callers check that first.
   */
  async get(url: string, headers: Record<string, string> = {}): Promise<Response> {
    const token = this.medplum.getAccessToken();
    const init: RequestInit = {
      method: 'GET',
      headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    };
    if (this.fetchFn) {
      return this.fetchFn(url, init);
    }
    const response = await fetch(url, init);
    this.observe(response);
    return response;
  }

  private observe(response: Response): void {
    this.answers++;
    const header = response.headers?.get?.('ratelimit');
    const parsed = header ? parseRateLimit(header) : undefined;
    if (parsed) {
      this.record(parsed.remaining, parsed.seconds);
    }
  }

  private record(remaining: number, seconds: number): void {
    const at = this.clock.now();
    this.reading = { remaining, resetAt: at + seconds * 1000, at };
    this.largestRemaining = Math.max(this.largestRemaining, remaining);
  }
}

/** `"fhirInteractions";r=49860;t=58` (several limits may be listed): the FHIR one with the fewest points left. */
export function parseRateLimit(header: string): { remaining: number; seconds: number } | undefined {
  let best: { remaining: number; seconds: number } | undefined;
  for (const part of header.split(',')) {
    const [name, ...fields] = part.split(';').map((s) => s.trim());
    if (!/fhir/i.test(name ?? '')) {
      continue;
    }
    const remaining = Number(fields.find((f) => f.startsWith('r='))?.slice(2));
    const seconds = Number(fields.find((f) => f.startsWith('t='))?.slice(2));
    if (Number.isFinite(remaining) && Number.isFinite(seconds) && (!best || remaining < best.remaining)) {
      best = { remaining, seconds };
    }
  }
  return best;
}

async function withStatusInBody(response: Response): Promise<Response> {
  const status = response.status;
  const contentType = response.headers.get('content-type') ?? '';
  let outcome: OperationOutcome | undefined;
  if (/json/i.test(contentType)) {
    try {
      const body = (await response.clone().json()) as unknown;
      outcome = isOperationOutcome(body) ? body : undefined;
    } catch {
      outcome = undefined; // not JSON after all: described below
    }
  }
  outcome ??= describedOutcome(status, contentType);
  const extension: Extension[] = [
    ...(outcome.extension ?? []).filter((e) => e.url !== HTTP_STATUS_EXTENSION),
    { url: HTTP_STATUS_EXTENSION, valueInteger: status },
  ];
  const headers = new Headers(response.headers);
  headers.set('content-type', 'application/fhir+json');
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(JSON.stringify({ ...outcome, extension }), {
    status,
    statusText: response.statusText,
    headers,
  });
}

/** An outcome for an error answer that is not FHIR (a gateway's HTML page, plain text, nothing). */
function describedOutcome(status: number, contentType: string): OperationOutcome {
  const body = contentType ? `a ${contentType.split(';')[0].trim()} body` : 'no FHIR body';
  const gateway = status === 502 || status === 503 || status === 504;
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: gateway ? 'transient' : status === 429 ? 'throttled' : status >= 500 ? 'exception' : 'processing',
        details: {
          text: gateway
            ? `HTTP ${status} from the server or a gateway in front of it (${body})`
            : `HTTP ${status} with ${body}`,
        },
      },
    ],
  };
}

/** The OperationOutcome inside an error thrown by MedplumClient (duck-typed: the bot runtime's core may differ). */
function outcomeOf(err: unknown): OperationOutcome | undefined {
  const outcome = (err as { outcome?: unknown } | undefined)?.outcome;
  if (isOperationOutcome(outcome)) {
    return outcome;
  }
  return isOperationOutcome(err) ? err : undefined;
}

/**
 * The HTTP status of a failed request: the server's real status when the link saw the answer, the
 * outcome's reading otherwise, 0 for a network failure, undefined for anything else (a bug or a
 * domain error, never retried).
 */
export function statusOf(err: unknown): number | undefined {
  const outcome = outcomeOf(err);
  if (outcome) {
    const recorded = outcome.extension?.find((e) => e.url === HTTP_STATUS_EXTENSION)?.valueInteger;
    return recorded ?? getStatus(outcome);
  }
  return isNetworkError(err) ? 0 : undefined;
}

const NETWORK_ERROR_CODES = /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|UND_ERR_\w+)$/;

/** fetch failures as undici, browsers and node report them. */
export function isNetworkError(err: unknown): boolean {
  const error = err as { name?: string; message?: string; code?: string; cause?: { code?: string } } | undefined;
  if (!error) {
    return false;
  }
  if (error.name === 'TypeError' && /fetch failed|failed to fetch|network|terminated/i.test(error.message ?? '')) {
    return true;
  }
  return NETWORK_ERROR_CODES.test(error.code ?? '') || NETWORK_ERROR_CODES.test(error.cause?.code ?? '');
}
