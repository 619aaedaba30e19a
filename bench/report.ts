/** The benchmark's outputs: bench/results.json, the README table, and the summary on stdout. */
import { readFile, writeFile } from 'node:fs/promises';
import type { PlanFirstSection, RowKind } from './plan-first';
import { KINDS } from './plan-first';
import type { QuotaSection } from './quota-bot';
import type { RealServerSection } from './real-server';

export interface Figure {
  label: string;
  /** The median of `runs`. */
  value: number;
  unit: string;
  /** Every measured run (warm-up runs excluded), in order. */
  runs: number[];
  /** Rows per run. */
  rows?: number;
  note?: string;
}

export interface Target {
  /** Key of the figure the target applies to. */
  figure: string;
  description: string;
  value: number;
  comparison: '>=' | '<=' | '<';
  threshold: number;
  met: boolean;
}

export interface BatchSizeRow {
  batchSize: number;
  /** Median rows/s into the local Medplum with 20 ms latency. */
  rowsPerSecond: number;
  runs: number[];
  requests: number;
  /** Largest request body for patients and for encounters (with notes), in bytes. */
  patientBodyBytes: number;
  encounterBodyBytes: number;
  /** Simulated minutes for the quota run (500 writes/minute, the server's default). */
  quotaMinutes: number;
}

export interface Results {
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGB: number;
    node: string;
    platform: string;
    /** 1-minute load average at the start and end: other work on the machine slows every rate. */
    loadAverage: { start: number; end: number };
  };
  date: string;
  /**
   * The engine measured: HEAD and whether src/ had uncommitted changes, at the start; and whether
   * that changed before the end (the peak-memory children load src/ when they start).
   */
  source: { commit: string; srcModified: boolean; changedDuringRun: boolean };
  runs: { timed: number; parseOnly: number; peakRss: number; warmUp: string };
  durationSeconds: number;
  /** Which parts ran: `all`, or `plan-first` (--only=plan-first: issue 11's comparison alone). */
  sections: 'all' | 'plan-first';
  figures: Record<string, Figure>;
  diagnostics: Record<string, Figure>;
  /** Issue 11: the plan-first importer against conditional-PUT batches, the quota-bound bot, a real server. */
  planFirst?: PlanFirstSection & { quotaBot: QuotaSection; realServer: RealServerSection };
  batchSizes?: {
    rows: number;
    latencyMs: number;
    quotaRows: number;
    /** The batch size with the highest median rate here (not necessarily the best default: see the README). */
    fastest: number;
    table: BatchSizeRow[];
  };
  targets: TargetSet;
}

/** Every target by name, and whether all were met. */
export interface TargetSet {
  met: boolean;
  [name: string]: Target | boolean;
}

export function target(
  figure: string,
  description: string,
  value: number,
  comparison: Target['comparison'],
  threshold: number
): Target {
  const met = comparison === '>=' ? value >= threshold : comparison === '<=' ? value <= threshold : value < threshold;
  return { figure, description, value, comparison, threshold, met };
}

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) {
    return 'not measured';
  }
  if (unit === 'points/row') {
    return `${value.toFixed(2)} points/row`;
  }
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  const text = value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit === 'x' ? `${text}x` : `${text} ${unit}`;
}

function targetList(results: Results): Target[] {
  return Object.values(results.targets).filter((t): t is Target => typeof t === 'object');
}

function targetText(t: Target, unit: string): string {
  const text = `${t.comparison} ${formatValue(t.threshold, unit)}`;
  return t.description ? `${text} (${t.description})` : text;
}

function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The figures table (figure, value, target, met), the diagnostics, issue 11's tables and the batch-size table, as Markdown. */
export function markdownTables(results: Results): string {
  const byFigure = new Map<string, Target>();
  for (const t of targetList(results)) {
    byFigure.set(t.figure, t);
  }
  const figureRows = Object.entries(results.figures).map(([key, f]) => {
    const t = byFigure.get(key);
    return [f.label, formatValue(f.value, f.unit), t ? targetText(t, f.unit) : '–', t ? (t.met ? 'yes' : '**no**') : '–'];
  });
  const diagnosticRows = Object.values(results.diagnostics).map((f) => [f.label, formatValue(f.value, f.unit)]);
  const m = results.machine;
  const parts = [
    `Measured ${results.date.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memoryGB} GB, Node ${m.node}; ` +
      `each figure is the median of ${results.runs.timed} runs (parse-only: ${results.runs.parseOnly}; ` +
      `peak memory: ${results.runs.peakRss} child processes) after ${results.runs.warmUp}. ` +
      `Engine: commit ${results.source.commit.slice(0, 7)}${results.source.srcModified ? ' with uncommitted changes in src/' : ''}` +
      `${results.source.changedDuringRun ? ' (src/ changed during the run)' : ''}. ` +
      `Whole run: ${Math.round(results.durationSeconds)} s; load average ${m.loadAverage.start.toFixed(1)} at the start, ` +
      `${m.loadAverage.end.toFixed(1)} at the end.`,
    '',
    markdownTable(['Figure', 'Value', 'Target', 'Met'], figureRows),
  ];
  if (diagnosticRows.length) {
    parts.push('', 'Where the pipeline time goes, and the floor under it (same rows; diagnostics, no target):', '', markdownTable(['Stage', 'Rate'], diagnosticRows));
  }
  if (results.planFirst) {
    parts.push('', planFirstMarkdown(results.planFirst));
  }
  const sizes = results.batchSizes;
  if (sizes) {
    const sizeRows = sizes.table.map((r) => [
      String(r.batchSize) + (r.batchSize === sizes.fastest ? ' (fastest here)' : ''),
      formatValue(r.rowsPerSecond, 'rows/s'),
      String(r.requests),
      `${Math.round(r.patientBodyBytes / 1024)} KB`,
      `${Math.round(r.encounterBodyBytes / 1024)} KB`,
      `${r.quotaMinutes.toFixed(1)} min`,
    ]);
    parts.push(
      '',
      `Batch size, end to end into the local Medplum with ${sizes.latencyMs} ms per request (${sizes.rows.toLocaleString('en-US')} patients); ` +
        `largest request body at that size for patients and for encounters with notes (the server refuses bodies over 1 MB); ` +
        `and simulated time for ${sizes.quotaRows.toLocaleString('en-US')} patients under the server's default write quota (500 writes a minute):`,
      '',
      markdownTable(['Batch size', 'Rate', 'Requests', 'Patient body', 'Encounter body', 'Quota-bound time'], sizeRows)
    );
  }
  return parts.join('\n');
}

const KIND_LABEL: Record<RowKind, string> = { new: 'new', unchanged: 'unchanged (re-run)', changed: 'changed (one element each)' };

function rate(value: number): string {
  return formatValue(value, 'rows/s');
}

function points(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : 'not read';
}

function seconds(value: number): string {
  return `${value.toFixed(2)} s`;
}

/** Issue 11's tables: side by side, the importer's profile, the sensitivity check, the quota-bound bot, the real server. */
export function planFirstMarkdown(p: NonNullable<Results['planFirst']>): string {
  const rows = p.rows.toLocaleString('en-US');
  const side = KINDS.map((kind) => [
    KIND_LABEL[kind],
    rate(p.importer[kind].rowsPerSecond),
    points(p.importer[kind].pointsPerRow),
    rate(p.baseline[kind].rowsPerSecond),
    points(p.baseline[kind].pointsPerRow),
    formatValue(p.speedups[kind].value, 'x'),
  ]);
  const profileRows = KINDS.flatMap((kind) =>
    (['importer', 'baseline'] as const).map((method) => {
      const f = p[method][kind];
      const pr = f.profile;
      const cell = (b: { requests: number; serverSeconds: number }): string => (b.requests ? `${b.requests}: ${seconds(b.serverSeconds)}` : '–');
      const total = pr.clientSeconds + pr.lookups.serverSeconds + pr.writes.serverSeconds + pr.raceChecks.serverSeconds + pr.other.serverSeconds;
      return [
        `${kind}, ${method === 'importer' ? 'importer' : 'conditional PUTs'}`,
        seconds(pr.clientSeconds),
        cell(pr.lookups),
        cell(pr.writes),
        cell(pr.raceChecks),
        seconds(total),
      ];
    })
  );
  const sensitivity = [
    ['calibrated (above): per request, search, stored write, unchanged update, identifier looked up', ...KINDS.map((k) => formatValue(p.speedups[k].value, 'x'))],
    ...p.sensitivity.map((s) => [s.model, ...KINDS.map((k) => formatValue(s.speedups[k], 'x'))]),
  ];
  const c = p.serverCosts;
  const parts = [
    `Issue 11: the plan-first importer (\`importCsv\`) against conditional-PUT batches of the same rows (\`bench/conditional-put.ts\`), ` +
      `${rows} patients, batches of ${p.batchSize}, median of ${p.runs} runs. Local Medplum with modeled server time ` +
      `(${c.perRequestMs} ms a request, ${c.perSearchMs} ms a search, ${c.perSearchRowMs} ms an identifier looked up, ` +
      `${c.perStoredWriteMs} ms a stored write, ${c.perUnchangedWriteMs} ms an unchanged update: fitted to the real server, bench/README.md); ` +
      `time is the client's own (real) plus the modeled server time. Points: the server's quota accounting (what its RateLimit header reports).`,
    '',
    markdownTable(['Rows', 'Importer', 'Importer points/row', 'Conditional PUTs', 'Cond. PUT points/row', 'Importer speed-up'], side),
    '',
    `Where the time goes (the median run, ${rows} rows; requests: modeled server seconds):`,
    '',
    markdownTable(['Phase', 'Client (real)', 'Plan lookups', 'Writes', 'Race checks', 'Total'], profileRows),
    '',
    'The importer speed-up under other models of server time (same runs):',
    '',
    markdownTable(['Server time', ...KINDS.map((k) => KIND_LABEL[k])], sensitivity),
  ];
  const q = p.quotaBot;
  if (q.error) {
    parts.push('', `Quota-bound bot: **not measured**: ${q.error}`);
  } else {
    parts.push(
      '',
      `Quota-bound bot (${q.rows.toLocaleString('en-US')} new rows, ${q.quotaPointsPerMinute.toLocaleString('en-US')} points a minute; ${q.setup}). ` +
        `The quota allows ${Math.round(q.allowedRowsPerMinute)} rows a minute at the importer's ${q.pointsPerNewRow.toFixed(2)} points per new row:`,
      '',
      markdownTable(
        ['Cron', 'Simulated time', 'Rows/min', 'Share of the quota rate', 'Runs', 'Longest run', 'Points/row, whole run', 'Report'],
        q.runs.map((r) => [
          `every ${r.cronMinutes} min`,
          `${r.minutes.toFixed(1)} min`,
          Math.round(r.rowsPerMinute).toLocaleString('en-US'),
          `${(r.share * 100).toFixed(1)}%`,
          String(r.invocations),
          `${r.longestRunSeconds.toFixed(1)} s`,
          points(r.pointsPerRow),
          `${r.report.created.toLocaleString('en-US')} created, ${r.report.unchanged.toLocaleString('en-US')} unchanged, ${r.report.failed} failed`,
        ])
      )
    );
  }
  const s = p.realServer;
  if (s.medians && s.speedups) {
    const real = KINDS.map((kind) => [
      KIND_LABEL[kind],
      rate(s.medians?.importer[kind].rowsPerSecond ?? NaN),
      points(s.medians?.importer[kind].pointsPerRow ?? NaN),
      rate(s.medians?.baseline[kind].rowsPerSecond ?? NaN),
      points(s.medians?.baseline[kind].pointsPerRow ?? NaN),
      formatValue(s.speedups?.[kind] ?? NaN, 'x'),
    ]);
    parts.push(
      '',
      `Against ${s.target}: ${s.rows?.toLocaleString('en-US')} rows per phase, median of ${s.runs} runs, wall clock, points from the RateLimit header` +
        (s.local ? ' (a check of the real-server harness: its rates mean nothing, its points must equal the server\'s own count):' : ':'),
      '',
      markdownTable(['Rows', 'Importer', 'Importer points/row', 'Conditional PUTs', 'Cond. PUT points/row', 'Importer speed-up'], real)
    );
  } else {
    parts.push('', `Real server: ${s.error ? `**failed**: ${s.error}` : `not run (${s.skipped ?? 'no reason given'})`}.`);
  }
  return parts.join('\n');
}

/** A plain-text summary for stdout. */
export function summary(results: Results): string {
  const rows: string[][] = [['figure', 'value', 'target', 'met']];
  const targets = targetList(results);
  for (const [key, f] of Object.entries(results.figures)) {
    const t = targets.find((v) => v.figure === key);
    rows.push([f.label, formatValue(f.value, f.unit), t ? `${t.comparison} ${formatValue(t.threshold, f.unit)}` : '-', t ? (t.met ? 'met' : 'NOT MET') : '-']);
  }
  for (const f of Object.values(results.diagnostics)) {
    rows.push([`(diagnostic) ${f.label}`, formatValue(f.value, f.unit), '-', '-']);
  }
  for (const r of results.batchSizes?.table ?? []) {
    rows.push([
      `batch size ${r.batchSize}${r.batchSize === results.batchSizes?.fastest ? ' (fastest here)' : ''}`,
      `${formatValue(r.rowsPerSecond, 'rows/s')}, ${Math.round(r.patientBodyBytes / 1024)}/${Math.round(r.encounterBodyBytes / 1024)} KB, ${r.quotaMinutes.toFixed(1)} min`,
      '-',
      '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  if (results.planFirst) {
    lines.push('', planFirstMarkdown(results.planFirst));
  }
  lines.push('', `all targets met: ${results.targets.met ? 'yes' : 'NO'}`);
  return lines.join('\n');
}

export const README_START = '<!-- bench:results:start (written by npm run bench) -->';
export const README_END = '<!-- bench:results:end -->';

/**
 * Replaces only what lies between the markers, so the rest of the README (other people's sections)
 * is never touched. Returns false when the README or its markers are missing.
 */
export async function updateReadme(path: string, tables: string): Promise<boolean> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) {
    return false;
  }
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) {
    return false;
  }
  const updated = text.slice(0, start + README_START.length) + '\n' + tables + '\n' + text.slice(end);
  if (updated !== text) {
    await writeFile(path, updated);
  }
  return true;
}
