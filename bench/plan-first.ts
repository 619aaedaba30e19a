/**
 * Issue 11, side by side: the plan-first importer (importCsv) against plain conditional-PUT batches
 * of the same rows (bench/conditional-put.ts), for new, unchanged and changed rows, on the local
 * Medplum with the calibrated server time (bench/server-model.ts). Points are the server's own
 * quota accounting (stats.points: what its RateLimit header reports).
 *
 * One run: for each method, a fresh local Medplum; the file imported (every row new), imported
 * again (every row unchanged), then a version of it with every row changed (one element each).
 */
import type { ImportReport } from '../src/lib';
import { csvFromText, defaultSettings, importCsv } from '../src/lib';
import { createLocalMedplum } from '../src/lib/local-medplum';
import { conditionalPutBatches } from './conditional-put';
import { patientLines, PATIENT_HEADER } from './generate';
import type { RequestRecord, ServerCosts } from './server-model';
import { CALIBRATED_COSTS, flatServerMs, modeledMedplum } from './server-model';
import { median } from './stats';

export const KINDS = ['new', 'unchanged', 'changed'] as const;
export type RowKind = (typeof KINDS)[number];
export type Method = 'importer' | 'baseline';

/** Where a phase's time went: modeled server time per request kind, and the client's own time. */
export interface PhaseProfile {
  /** Plan lookups (POST Type/_search before a write). */
  lookups: { requests: number; serverSeconds: number; points: number };
  /** Look-ups of the rows just created (races with another importer). */
  raceChecks: { requests: number; serverSeconds: number; points: number };
  writes: { requests: number; serverSeconds: number; points: number };
  other: { requests: number; serverSeconds: number; points: number };
  /** Client time (real): parse, map, plan, JSON both ways; the local server's own time excluded. */
  clientSeconds: number;
}

/** What one phase (a method writing rows of one kind) measured, wherever it ran. */
export interface PhaseMeasure {
  method: Method;
  kind: RowKind;
  rows: number;
  /** Here: client time + modeled server time; on a real server: the wall clock. */
  seconds: number;
  rowsPerSecond: number;
  points: number;
  pointsPerRow: number;
  requests: number;
}

export interface PhaseSample extends PhaseMeasure {
  /** Real seconds the phase took on this machine (local server included, modeled time not). */
  realSeconds: number;
  profile: PhaseProfile;
  /** Server seconds under flat serverTime models, for the sensitivity check: key `perRequest/perEntry`. */
  flatServerSeconds: Record<string, number>;
}

/** Flat `serverTime` models compared in the sensitivity check (ms per request / per entry). */
export const FLAT_MODELS: readonly { perRequestMs: number; perEntryMs: number }[] = [
  { perRequestMs: 6, perEntryMs: 2.2 }, // fitted to unchanged conditional-PUT batches
  { perRequestMs: 6, perEntryMs: 5.4 }, // fitted to new conditional-PUT batches
];

export function flatKey(m: { perRequestMs: number; perEntryMs: number }): string {
  return `${m.perRequestMs}/${m.perEntryMs}`;
}

/** The rows, and the same rows with every one changed (its first name), same ids. */
export function inputs(rows: number, seed = 31, prefix = 'C'): { original: string; changed: string } {
  const lines = [...patientLines(rows, seed, prefix)];
  const changed = lines.map((line) => {
    const [id, given, ...rest] = line.split(',');
    return [id, `${given}-Lee`, ...rest].join(',');
  });
  return {
    original: [PATIENT_HEADER, ...lines].join('\n') + '\n',
    changed: [PATIENT_HEADER, ...changed].join('\n') + '\n',
  };
}

function expectReport(report: ImportReport, rows: number, kind: RowKind): void {
  const state = kind === 'new' ? 'created' : kind === 'changed' ? 'updated' : 'unchanged';
  if (report.rows !== rows || report[state] !== rows) {
    const first = report.errors[0]?.message ?? report.conflicts?.[0]?.paths?.join(', ') ?? 'no error listed';
    throw new Error(
      `importer, ${kind} rows: expected ${rows} ${state}, got ${JSON.stringify({ rows: report.rows, created: report.created, updated: report.updated, unchanged: report.unchanged, conflict: report.conflict, failed: report.failed })} (${first})`
    );
  }
}

/** One run of one method: new, unchanged, changed, each timed on the modeled clock. */
export async function runMethod(method: Method, rows: number, costs: ServerCosts = CALIBRATED_COSTS): Promise<PhaseSample[]> {
  const { original, changed } = inputs(rows);
  const { medplum, clock, requests } = modeledMedplum(costs);
  const settings = defaultSettings();
  const samples: PhaseSample[] = [];
  for (const kind of KINDS) {
    const text = kind === 'changed' ? changed : original;
    const first = requests.length;
    const before = medplum.stats;
    const serverBefore = clock.serverMs;
    const realStart = performance.now();
    const start = clock.now();
    if (method === 'importer') {
      const { report } = await importCsv(medplum, csvFromText('patients.csv', text), { settings });
      expectReport(report, rows, kind);
    } else {
      const result = await conditionalPutBatches(medplum, text, { settings });
      const expected = kind === 'new' ? '201' : '200';
      if (result.rows !== rows || result.statuses[expected] !== rows) {
        throw new Error(`baseline, ${kind} rows: expected ${rows} answered ${expected}, got ${JSON.stringify(result.statuses)}`);
      }
    }
    const seconds = (clock.now() - start) / 1000;
    const realSeconds = (performance.now() - realStart) / 1000;
    const after = medplum.stats;
    const expectedWrites = kind === 'unchanged' ? 0 : rows;
    if (after.writes - before.writes !== expectedWrites) {
      throw new Error(`${method}, ${kind} rows: ${after.writes - before.writes} versions stored, expected ${expectedWrites}`);
    }
    const records = requests.slice(first);
    const points = after.points - before.points;
    samples.push({
      method,
      kind,
      rows,
      seconds,
      rowsPerSecond: rows / seconds,
      points,
      pointsPerRow: points / rows,
      requests: after.requests - before.requests,
      realSeconds,
      profile: profile(records, seconds - (clock.serverMs - serverBefore) / 1000),
      flatServerSeconds: Object.fromEntries(
        FLAT_MODELS.map((m) => [flatKey(m), flatServerMs(records, m.perRequestMs, m.perEntryMs) / 1000])
      ),
    });
  }
  if (medplum.allResources('Patient').length !== rows) {
    throw new Error(`${method}: ${medplum.allResources('Patient').length} Patients stored, expected ${rows}`);
  }
  return samples;
}

/**
 * Request kinds in order. A lookup that follows a write and is followed by another lookup (or ends
 * the phase) is the race check of the rows that write created; other lookups are plan lookups.
 */
function profile(records: readonly RequestRecord[], clientSeconds: number): PhaseProfile {
  const result: PhaseProfile = {
    lookups: { requests: 0, serverSeconds: 0, points: 0 },
    raceChecks: { requests: 0, serverSeconds: 0, points: 0 },
    writes: { requests: 0, serverSeconds: 0, points: 0 },
    other: { requests: 0, serverSeconds: 0, points: 0 },
    clientSeconds,
  };
  records.forEach((r, i) => {
    let bucket = result.other;
    if (r.kind === 'write') {
      bucket = result.writes;
    } else if (r.kind === 'lookup') {
      const afterWrite = records[i - 1]?.kind === 'write';
      const next = records[i + 1];
      bucket = afterWrite && (!next || next.kind === 'lookup') ? result.raceChecks : result.lookups;
    }
    bucket.requests++;
    bucket.serverSeconds += r.serverMs / 1000;
    bucket.points += r.points;
  });
  return result;
}

/** Requests the importer makes for `rows` independent rows (new, unchanged, changed), counted by the server. */
export async function importerRequests(rows: number): Promise<Record<RowKind, number>> {
  const { original, changed } = inputs(rows, 37, 'R');
  const medplum = createLocalMedplum({ maxRetries: 0 });
  const counts = {} as Record<RowKind, number>;
  for (const kind of KINDS) {
    const before = medplum.stats.requests;
    const { report } = await importCsv(medplum, csvFromText('patients.csv', kind === 'changed' ? changed : original));
    expectReport(report, rows, kind);
    counts[kind] = medplum.stats.requests - before;
  }
  return counts;
}

/** Medians of several runs, per method and kind of rows. */
export interface PhaseFigures {
  rowsPerSecond: number;
  pointsPerRow: number;
  requests: number;
  /** Every run's rows/s and points per row. */
  runs: { rowsPerSecond: number; pointsPerRow: number; realSeconds: number }[];
  /** The profile of the run with the median rate. */
  profile: PhaseProfile;
}

export interface PlanFirstSection {
  rows: number;
  batchSize: number;
  runs: number;
  serverCosts: ServerCosts;
  clock: string;
  importer: Record<RowKind, PhaseFigures>;
  baseline: Record<RowKind, PhaseFigures>;
  /** Importer rows/s over the baseline's, per kind (ratio of the medians), and per run. */
  speedups: Record<RowKind, { value: number; runs: number[] }>;
  /** The speed-up of each kind under other server-time models (same runs, same requests). */
  sensitivity: { model: string; speedups: Record<RowKind, number> }[];
  /** Requests the importer made for 1,000 independent rows, by kind. */
  requestsPer1000: Record<RowKind, number>;
}

function figuresOf(samples: readonly PhaseSample[]): PhaseFigures {
  const rates = samples.map((s) => s.rowsPerSecond);
  const mid = median(rates);
  const closest = samples.reduce((a, b) => (Math.abs(b.rowsPerSecond - mid) < Math.abs(a.rowsPerSecond - mid) ? b : a));
  return {
    rowsPerSecond: mid,
    pointsPerRow: median(samples.map((s) => s.pointsPerRow)),
    requests: median(samples.map((s) => s.requests)),
    runs: samples.map((s) => ({ rowsPerSecond: s.rowsPerSecond, pointsPerRow: s.pointsPerRow, realSeconds: s.realSeconds })),
    profile: closest.profile,
  };
}

/**
 * The whole side-by-side: one untimed warm-up of each method (`warmUpRows`), then `runs` runs of
 * each, alternating, so that a disturbance of the machine hits both.
 */
export async function measurePlanFirst(
  rows: number,
  runs: number,
  warmUpRows: number,
  onRun: (line: string) => void = () => undefined
): Promise<PlanFirstSection> {
  await runMethod('importer', warmUpRows);
  await runMethod('baseline', warmUpRows);
  const samples: Record<Method, PhaseSample[][]> = { importer: [], baseline: [] };
  for (let i = 0; i < runs; i++) {
    for (const method of ['importer', 'baseline'] as const) {
      const run = await runMethod(method, rows);
      samples[method].push(run);
      onRun(
        `plan-first: run ${i + 1}/${runs}: ${method}: ` +
          run.map((s) => `${s.kind} ${Math.round(s.rowsPerSecond).toLocaleString('en-US')} rows/s, ${s.pointsPerRow.toFixed(2)} points/row`).join('; ')
      );
    }
  }
  const byKind = (method: Method, kind: RowKind): PhaseSample[] => samples[method].map((run) => run.find((s) => s.kind === kind) as PhaseSample);
  const section = (method: Method): Record<RowKind, PhaseFigures> =>
    Object.fromEntries(KINDS.map((kind) => [kind, figuresOf(byKind(method, kind))])) as Record<RowKind, PhaseFigures>;
  const importer = section('importer');
  const baseline = section('baseline');
  const speedups = Object.fromEntries(
    KINDS.map((kind) => {
      const ours = byKind('importer', kind);
      const theirs = byKind('baseline', kind);
      return [
        kind,
        { value: importer[kind].rowsPerSecond / baseline[kind].rowsPerSecond, runs: ours.map((s, i) => s.rowsPerSecond / theirs[i].rowsPerSecond) },
      ];
    })
  ) as PlanFirstSection['speedups'];

  // The same runs under other models of server time: client time + that model's server time.
  const speedupUnder = (seconds: (s: PhaseSample) => number): Record<RowKind, number> =>
    Object.fromEntries(
      KINDS.map((kind) => {
        const rate = (method: Method): number => median(byKind(method, kind).map((s) => s.rows / seconds(s)));
        return [kind, rate('importer') / rate('baseline')];
      })
    ) as Record<RowKind, number>;
  const sensitivity = [
    ...FLAT_MODELS.map((m) => ({
      model: `flat serverTime: ${m.perRequestMs} ms a request + ${m.perEntryMs} ms a batch entry (a search counts 1)`,
      speedups: speedupUnder((s) => s.profile.clientSeconds + s.flatServerSeconds[flatKey(m)]),
    })),
    {
      model: "no modeled server time: the local Medplum's own speed, real time (says nothing about a real server)",
      speedups: speedupUnder((s) => s.realSeconds),
    },
  ];
  return {
    rows,
    batchSize: defaultSettings().batchSize,
    runs,
    serverCosts: CALIBRATED_COSTS,
    clock: "client's real time + modeled server time (the local Medplum's own processing time excluded)",
    importer,
    baseline,
    speedups,
    sensitivity,
    requestsPer1000: await importerRequests(1_000),
  };
}
