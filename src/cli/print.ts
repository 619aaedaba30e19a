import type { ImportReport } from '../lib';

export interface FileOutcome {
  file: string;
  report?: ImportReport;
  /** A whole-file problem: nothing of the file was written. */
  error?: string;
}

const COLUMNS = ['file', 'table', 'rows', 'created', 'updated', 'unchanged', 'failed', 'skipped'] as const;

/** The reports as a text table, then each file's problems (row, column, source id, message). */
export function formatReports(outcomes: FileOutcome[], maxErrorsPerFile = 20): string {
  const rows = outcomes.map((o) =>
    o.report
      ? [o.file, o.report.table, ...COLUMNS.slice(2).map((c) => String(o.report?.[c as keyof ImportReport] ?? ''))]
      : [o.file, 'ERROR', '', '', '', '', '', '']
  );
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(COLUMNS), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];

  for (const o of outcomes) {
    if (o.error) {
      const message = o.error.startsWith(`${o.file}: `) ? o.error.slice(o.file.length + 2) : o.error;
      out.push('', `${o.file}: not imported: ${message}`);
      continue;
    }
    const report = o.report as ImportReport;
    const notes = [...report.warnings.map((w) => `  warning: ${w}`)];
    if (report.dryRun && report.wouldWrite) {
      notes.push(`  dry run: would write ${Object.entries(report.wouldWrite).map(([t, n]) => `${n} ${t}`).join(', ') || 'nothing'}`);
    }
    for (const e of report.errors.slice(0, maxErrorsPerFile)) {
      const where = [`row ${e.row}`, e.column && `column ${e.column}`, e.sourceId && `id ${e.sourceId}`].filter(Boolean);
      notes.push(`  ${where.join(', ')}: ${e.message}`);
    }
    if (report.errors.length > maxErrorsPerFile) {
      notes.push(`  ... and ${report.errors.length - maxErrorsPerFile} more errors`);
    }
    if (notes.length) {
      out.push('', `${o.file}:`, ...notes);
    }
  }
  return out.join('\n');
}
