/**
 * Issue 11's comparison against a real Medplum: the plan-first importer and conditional-PUT
 * batches, new / unchanged / changed rows, rows/s on the wall clock (network included) and quota
 * points read from the server's `RateLimit` header, as a user reads them. See bench/README.md,
 * "Against a real Medplum".
 *
 * Points: before each phase a probe search (20 points, not counted) reads the window; when it has
 * too few points left for the phase, or too little time, the bench waits for the reset. The phase's
 * points are the points left after the probe minus the points left after its last request. A window
 * that resets during a phase makes its points unreadable: the figure is then left out (NaN), with
 * a note; fewer rows (--server-rows) or a project with a larger quota avoid it.
 *
 * Each run writes new Patients under identifier systems of its own
 * (`https://bench.medplum-csv.invalid/<time>/<method><run>/patient-id`); nothing is deleted.
 */
import { MedplumClient, normalizeErrorString } from '@medplum/core';
import type { ImportReport } from '../src/lib';
import { csvFromText, defaultSettings, importCsv } from '../src/lib';
import { connectionSettings, loadEnvironment } from '../src/cli/connect';
import { redactUrl, redactUrls } from '../src/cli/redact';
import { createLocalMedplum } from '../src/lib/local-medplum';
import { parseRateLimit } from '../src/lib/execute/server-link';
import { createFakeClock } from '../test/helpers/clock';
import { conditionalPutBatches } from './conditional-put';
import type { Method, PhaseMeasure, RowKind } from './plan-first';
import { inputs, KINDS } from './plan-first';
import { log } from './stats';

/** The most points a phase may need per row: a conditional PUT of a new row in a batch. */
const MAX_POINTS_PER_ROW = 140;
/** Points kept free besides: the importer's own reserve (600) and its first estimate. */
const PHASE_MARGIN_POINTS = 1_000;
/** A phase starts only with at least this long left in the window. */
const MIN_WINDOW_SECONDS = 30;

export interface ServerTarget {
  medplum: MedplumClient;
  /** For the output: never holds credentials. */
  description: string;
  /** True for the local Medplum standing in for a server (checking this harness). */
  local: boolean;
  /** The last RateLimit reading, and FHIR requests made, as the client's fetch saw them. */
  readings: RateLimitLog;
  sleep(ms: number): Promise<void>;
}

export interface RateLimitLog {
  last?: { remaining: number; seconds: number };
  /** Readings whose points rose since the one before: a window reset. */
  resets: number;
  requests: number;
  /** Local stand-in only: the server's own count, to check the header reading. */
  serverPoints?: () => number;
}

/** `points` are read from the RateLimit header: NaN when the window reset during the phase. */
export interface ServerPhase extends PhaseMeasure {
  run: number;
  /** Local stand-in only: the server's own count. */
  serverPoints?: number;
}

function observe(readings: RateLimitLog, response: Response): void {
  const header = response.headers.get('ratelimit');
  const parsed = header ? parseRateLimit(header) : undefined;
  if (parsed) {
    if (readings.last && parsed.remaining > readings.last.remaining) {
      readings.resets++;
    }
    readings.last = parsed;
  }
}

/** The server named by MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET; undefined when not set. */
export async function connectFromEnvironment(): Promise<ServerTarget | undefined> {
  loadEnvironment();
  if (!process.env.MEDPLUM_BASE_URL) {
    return undefined;
  }
  const { baseUrl, clientId, clientSecret } = connectionSettings();
  const readings: RateLimitLog = { resets: 0, requests: 0 };
  const fhirPrefix = new URL('fhir/', baseUrl.endsWith('/') ? baseUrl : baseUrl + '/').toString();
  const recording = async (url: string, init?: RequestInit): Promise<Response> => {
    const response = await fetch(url, init);
    if (url.startsWith(fhirPrefix)) {
      readings.requests++;
      observe(readings, response);
    }
    return response;
  };
  const medplum = new MedplumClient({ baseUrl, clientId, fetch: recording });
  try {
    await medplum.startClientLogin(clientId, clientSecret);
  } catch (err) {
    throw new Error(`Could not log in to ${redactUrl(baseUrl)}: ${redactUrls(normalizeErrorString(err), [baseUrl])}`);
  }
  return {
    medplum,
    description: `Medplum at ${redactUrl(baseUrl)}`,
    local: false,
    readings,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

/**
 * The local Medplum at the server's default quota (50,000 points a minute), read through its
 * RateLimit header exactly as a server is: checks this harness (`--server=local`). Its rows/s
 * mean nothing (no server time); its points are compared with the server's own count.
 */
export function localStandIn(): ServerTarget {
  const clock = createFakeClock();
  const medplum = createLocalMedplum({ maxRetries: 0, clock, fhirQuota: 50_000 });
  const readings: RateLimitLog = { resets: 0, requests: 0, serverPoints: () => medplum.stats.points };
  const client = medplum.client;
  const inner = client.mockFetch.bind(client);
  client.mockFetch = async (url: string, init?: RequestInit): Promise<Response> => {
    const response = await inner(url, init);
    readings.requests++;
    observe(readings, response);
    return response;
  };
  return { medplum, description: 'the local Medplum (50,000 points a minute), standing in for a server', local: true, readings, sleep: clock.sleep };
}

/** Probes until the window has `needed` points and MIN_WINDOW_SECONDS left; returns the points left. */
async function freshWindow(target: ServerTarget, system: string, needed: number): Promise<number> {
  for (let attempt = 0; attempt < 4; attempt++) {
    await target.medplum.searchResources('Patient', { identifier: `${system}|probe`, _count: '1' }, { cache: 'no-cache' });
    const reading = target.readings.last;
    if (!reading) {
      throw new Error(
        'the server sent no RateLimit header, so quota points cannot be read (a super admin is never charged): use a ClientApplication of an ordinary project'
      );
    }
    if (reading.remaining >= needed && reading.seconds >= MIN_WINDOW_SECONDS) {
      return reading.remaining;
    }
    log(`real server: ${reading.remaining} points and ${reading.seconds} s left in the quota window (${needed} points needed): waiting for the reset`);
    await target.sleep((reading.seconds + 1) * 1000);
  }
  throw new Error(`the quota window never held ${needed} points: lower --server-rows (or raise the project's userFhirQuota)`);
}

/** One phase (one method, one kind of rows) on the server, timed on the wall clock. */
async function phase(
  target: ServerTarget,
  method: Method,
  kind: RowKind,
  run: number,
  rows: number,
  text: string,
  identifierBase: string
): Promise<ServerPhase> {
  const settings = { ...defaultSettings(), identifierBase };
  const system = `${identifierBase}/patient-id`;
  const before = await freshWindow(target, system, rows * MAX_POINTS_PER_ROW + PHASE_MARGIN_POINTS);
  const resets = target.readings.resets;
  const requests = target.readings.requests;
  const serverBefore = target.readings.serverPoints?.();
  const start = performance.now();
  if (method === 'importer') {
    const { report } = await importCsv(target.medplum, csvFromText('patients.csv', text), { settings });
    const state = kind === 'new' ? 'created' : kind === 'changed' ? 'updated' : 'unchanged';
    if (report[state] !== rows) {
      throw new Error(`real server, importer, ${kind} rows: ${summary(report)} (${report.errors[0]?.message ?? 'no error listed'})`);
    }
  } else {
    const result = await conditionalPutBatches(target.medplum, text, { settings });
    const expected = kind === 'new' ? '201' : '200';
    if (result.statuses[expected] !== rows) {
      throw new Error(`real server, baseline, ${kind} rows: expected ${rows} answered ${expected}, got ${JSON.stringify(result.statuses)}`);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const after = target.readings.last?.remaining ?? NaN;
  const points = target.readings.resets === resets ? before - after : NaN;
  if (Number.isNaN(points)) {
    log(`real server: the quota window reset during ${method} ${kind} (run ${run}): its points are left out; use fewer rows`);
  }
  const serverAfter = target.readings.serverPoints?.();
  if (serverBefore !== undefined && serverAfter !== undefined && Number.isFinite(points) && points !== serverAfter - serverBefore) {
    throw new Error(`the RateLimit reading (${points} points) differs from the server's own count (${serverAfter - serverBefore}) for ${method} ${kind}`);
  }
  return {
    method,
    kind,
    run,
    rows,
    seconds,
    rowsPerSecond: rows / seconds,
    points,
    pointsPerRow: points / rows,
    requests: target.readings.requests - requests,
    serverPoints: serverBefore === undefined || serverAfter === undefined ? undefined : serverAfter - serverBefore,
  };
}

function summary(report: ImportReport): string {
  const { rows, created, updated, unchanged, conflict, failed, skipped } = report;
  return JSON.stringify({ rows, created, updated, unchanged, conflict, failed, skipped });
}

/** `runs` runs of both methods, each on identifiers of its own. */
export async function measureOnServer(target: ServerTarget, rows: number, runs: number): Promise<ServerPhase[]> {
  const stamp = new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15);
  const phases: ServerPhase[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const method of ['importer', 'baseline'] as const) {
      const identifierBase = `https://bench.medplum-csv.invalid/${stamp}/${method}${run}`;
      const { original, changed } = inputs(rows, 41 + run, 'S');
      for (const kind of KINDS) {
        const p = await phase(target, method, kind, run, rows, kind === 'changed' ? changed : original, identifierBase);
        phases.push(p);
        log(
          `real server, run ${run}/${runs}: ${method} ${kind}: ${Math.round(p.rowsPerSecond).toLocaleString('en-US')} rows/s, ` +
            `${p.pointsPerRow.toFixed(2)} points/row (RateLimit header)${p.serverPoints === undefined ? '' : `, server's count ${(p.serverPoints / rows).toFixed(2)}`}, ${p.requests} requests`
        );
      }
    }
  }
  return phases;
}

export interface RealServerSection {
  /** Where it ran (no credentials), or why it did not. */
  target?: string;
  /** The local Medplum standing in for a server (--server=local): a check of this harness, no targets. */
  local?: boolean;
  skipped?: string;
  error?: string;
  rows?: number;
  runs?: number;
  phases?: ServerPhase[];
  /** Medians per method and kind (points: of the phases whose window did not reset). */
  medians?: Record<Method, Record<RowKind, { rowsPerSecond: number; pointsPerRow: number; requests: number }>>;
  speedups?: Record<RowKind, number>;
}

function medianOf(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) {
    return NaN;
  }
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/** The real-server part of the benchmark: skipped without MEDPLUM_BASE_URL (or with --server=off). */
export async function realServerSection(mode: string | undefined, rows: number, runs: number): Promise<RealServerSection> {
  if (mode === 'off') {
    return { skipped: '--server=off' };
  }
  let target: ServerTarget | undefined;
  try {
    target = mode === 'local' ? localStandIn() : await connectFromEnvironment();
  } catch (err) {
    return { error: normalizeErrorString(err) };
  }
  if (!target) {
    return { skipped: 'MEDPLUM_BASE_URL is not set (see bench/README.md, "Against a real Medplum")' };
  }
  log(`real server: ${target.description}, ${rows} rows per phase, ${runs} runs`);
  try {
    const phases = await measureOnServer(target, rows, runs);
    const medians = Object.fromEntries(
      (['importer', 'baseline'] as const).map((method) => [
        method,
        Object.fromEntries(
          KINDS.map((kind) => {
            const of = phases.filter((p) => p.method === method && p.kind === kind);
            return [
              kind,
              {
                rowsPerSecond: medianOf(of.map((p) => p.rowsPerSecond)),
                pointsPerRow: medianOf(of.map((p) => p.pointsPerRow)),
                requests: medianOf(of.map((p) => p.requests)),
              },
            ];
          })
        ),
      ])
    ) as RealServerSection['medians'] & object;
    const speedups = Object.fromEntries(KINDS.map((kind) => [kind, medians.importer[kind].rowsPerSecond / medians.baseline[kind].rowsPerSecond])) as Record<RowKind, number>;
    return { target: target.description, local: target.local, rows, runs, phases, medians, speedups };
  } catch (err) {
    return { target: target.description, rows, runs, error: redactUrls(normalizeErrorString(err), [process.env.MEDPLUM_BASE_URL]) };
  }
}
