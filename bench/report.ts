/** The benchmark's outputs: bench/results.json, the README table, and the summary on stdout. */
import { readFile, writeFile } from 'node:fs/promises';

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
  figures: Record<string, Figure>;
  diagnostics: Record<string, Figure>;
  batchSizes: {
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

/** The figures table (figure, value, target, met) and the batch-size table, as Markdown. */
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
  const sizes = results.batchSizes;
  const sizeRows = sizes.table.map((r) => [
    String(r.batchSize) + (r.batchSize === sizes.fastest ? ' (fastest here)' : ''),
    formatValue(r.rowsPerSecond, 'rows/s'),
    String(r.requests),
    `${Math.round(r.patientBodyBytes / 1024)} KB`,
    `${Math.round(r.encounterBodyBytes / 1024)} KB`,
    `${r.quotaMinutes.toFixed(1)} min`,
  ]);
  const m = results.machine;
  return [
    `Measured ${results.date.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memoryGB} GB, Node ${m.node}; ` +
      `each figure is the median of ${results.runs.timed} runs (parse-only: ${results.runs.parseOnly}; ` +
      `peak memory: ${results.runs.peakRss} child processes) after ${results.runs.warmUp}. ` +
      `Engine: commit ${results.source.commit.slice(0, 7)}${results.source.srcModified ? ' with uncommitted changes in src/' : ''}` +
      `${results.source.changedDuringRun ? ' (src/ changed during the run)' : ''}. ` +
      `Whole run: ${Math.round(results.durationSeconds)} s; load average ${m.loadAverage.start.toFixed(1)} at the start, ` +
      `${m.loadAverage.end.toFixed(1)} at the end.`,
    '',
    markdownTable(['Figure', 'Value', 'Target', 'Met'], figureRows),
    '',
    'Where the pipeline time goes, and the floor under it (same rows; diagnostics, no target):',
    '',
    markdownTable(['Stage', 'Rate'], diagnosticRows),
    '',
    `Batch size, end to end into the local Medplum with ${sizes.latencyMs} ms per request (${sizes.rows.toLocaleString('en-US')} patients); ` +
      `largest request body at that size for patients and for encounters with notes (the server refuses bodies over 1 MB); ` +
      `and simulated time for ${sizes.quotaRows.toLocaleString('en-US')} patients under the server's default write quota (500 writes a minute):`,
    '',
    markdownTable(['Batch size', 'Rate', 'Requests', 'Patient body', 'Encounter body', 'Quota-bound time'], sizeRows),
  ].join('\n');
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
  for (const r of results.batchSizes.table) {
    rows.push([
      `batch size ${r.batchSize}${r.batchSize === results.batchSizes.fastest ? ' (fastest here)' : ''}`,
      `${formatValue(r.rowsPerSecond, 'rows/s')}, ${Math.round(r.patientBodyBytes / 1024)}/${Math.round(r.encounterBodyBytes / 1024)} KB, ${r.quotaMinutes.toFixed(1)} min`,
      '-',
      '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
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
