import type { Resource } from '@medplum/fhirtypes';
import type { ImportReport } from '../lib';
import type { RejectedRowsWritten } from './rejected';

export interface FileOutcome {
  /** The file's path as given on the command line. */
  file: string;
  report?: ImportReport;
  /** A whole-file problem: nothing of the file was written. */
  error?: string;
  /** Where its failed rows were written (--rejected). */
  rejected?: RejectedRowsWritten;
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
      if (o.rejected) {
        out.push(`  rejected rows (${o.rejected.rows}) before it stopped: ${o.rejected.path}`);
      }
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
    if (o.rejected) {
      notes.push(`  rejected rows (${o.rejected.rows}): ${o.rejected.path}`);
    }
    if (notes.length) {
      out.push('', `${o.file}:`, ...notes);
    }
  }
  return out.join('\n');
}

/**
 * `--show`: a file's first mapped resources as pretty JSON, each headed by the file and the row it
 * came from. They hold cell values: this goes to standard output only, never to logs or reports.
 */
export function formatShown(
  file: string,
  shown: readonly { row: number; resource: Resource }[],
  outcome: FileOutcome,
  tableKind: 'rows' | 'aggregate'
): string {
  if (shown.length === 0) {
    let why: string;
    if (outcome.error) {
      why = 'the file was not imported';
    } else if (tableKind === 'aggregate') {
      why = `table ${outcome.report?.table} is written as a whole, not row by row`;
    } else if (!outcome.report?.rows) {
      why = 'the file has no data rows';
    } else {
      why = 'no row was mapped (every row failed or was skipped: see below)';
    }
    return `--- ${file}: no mapped resources to show: ${why}\n\n`;
  }
  return shown.map(({ row, resource }) => `--- ${file} row ${row}: ${resource.resourceType}\n${JSON.stringify(resource, null, 2)}\n\n`).join('');
}
