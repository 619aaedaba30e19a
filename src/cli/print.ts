import type { Resource } from '@medplum/fhirtypes';
import type { ImportReport } from '../lib';
import type { ReconcileList, ReconcileReport } from '../lib/reconcile';
import type { RejectedRowsWritten } from './rejected';

export interface FileOutcome {
  /** The file's path as given on the command line. */
  file: string;
  report?: ImportReport;
  /** A whole-file problem: nothing of the file was written. */
  error?: string;
  /** Where its failed rows were written (--rejected). */
  rejected?: RejectedRowsWritten;
  /** Rows that fail for want of a resource not in Medplum yet (e.g. a Patient of another file). */
  waitingForParents?: number;
  /** --reconcile: the file compared with Medplum. */
  reconcile?: ReconcileReport;
}

/** A table row per file: its name, its table and the counts of `columns` (after the first two), or ERROR. */
function countRows(
  outcomes: readonly FileOutcome[],
  columns: readonly string[],
  counts: (o: FileOutcome) => ({ table: string } & object) | undefined
): string[][] {
  return outcomes.map((o) => {
    const found = counts(o) as Record<string, unknown> | undefined;
    return found
      ? [o.file, String(found.table), ...columns.slice(2).map((c) => String(found[c] ?? ''))]
      : [o.file, 'ERROR', ...columns.slice(2).map(() => '')];
  });
}

/** The outcome's error without the file name it may start with (the line names the file already). */
function errorWithoutFile(o: FileOutcome): string | undefined {
  return o.error?.startsWith(`${o.file}: `) ? o.error.slice(o.file.length + 2) : o.error;
}

const COLUMNS = ['file', 'table', 'rows', 'created', 'updated', 'unchanged', 'conflict', 'failed', 'skipped'] as const;

/** The reports as a text table, then each file's problems (row, column, source id, message). */
export function formatReports(outcomes: FileOutcome[], maxErrorsPerFile = 20): string {
  const out = textTable(COLUMNS, countRows(outcomes, COLUMNS, (o) => o.report));

  for (const o of outcomes) {
    if (o.error) {
      out.push('', `${o.file}: not imported: ${errorWithoutFile(o)}`);
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
      notes.push(`  ${rowWhere(e)}: ${e.message}`);
    }
    if (report.errors.length > maxErrorsPerFile) {
      notes.push(`  ... and ${report.errors.length - maxErrorsPerFile} more errors`);
    }
    if (report.plan && o.waitingForParents) {
      notes.push(
        `  ${o.waitingForParents} of these rows name resources not in Medplum yet: a plan writes nothing, so it cannot see what files planned with it would create (import those first, then plan this one)`
      );
    }
    const conflicts = report.conflicts ?? [];
    const kept = report.plan ? 'would be kept' : 'kept';
    for (const c of conflicts.slice(0, maxErrorsPerFile)) {
      notes.push(`  ${rowWhere(c)}: conflict: ${c.paths.join(', ')} changed in Medplum since the last import (${kept}; --on-conflict overwrite replaces them)`);
    }
    if (conflicts.length > maxErrorsPerFile) {
      notes.push(`  ... and ${conflicts.length - maxErrorsPerFile} more rows in conflict`);
    }
    if (o.rejected) {
      notes.push(`  rejected rows (${o.rejected.rows}): ${o.rejected.path}`);
    }
    if (notes.length) {
      out.push('', `${o.file}:`, ...notes);
    }
  }
  if (outcomes.some((o) => o.report?.plan)) {
    out.push('', 'Plan only: nothing was written. The counts are what an import would do now.');
  }
  return out.join('\n');
}

const RECONCILE_COLUMNS = ['file', 'table', 'rows', 'mapped', 'rejected', 'skipped', 'matched', 'missing', 'extra', 'duplicates', 'unresolved'] as const;

/**
 * `--reconcile`: per file, the rows accounted for (mapped + rejected + skipped) and what does not
 * match Medplum, then each file's findings (row, source id, type, identifier; never cell values).
 */
export function formatReconciliations(outcomes: FileOutcome[], maxPerList = 20): string {
  const out = textTable(RECONCILE_COLUMNS, countRows(outcomes, RECONCILE_COLUMNS, (o) => o.reconcile));
  for (const o of outcomes) {
    if (o.error || !o.reconcile) {
      out.push('', `${o.file}: not reconciled: ${errorWithoutFile(o)}`);
      continue;
    }
    const r = o.reconcile;
    const notes: string[] = r.warnings.map((w) => `  warning: ${w}`);
    const list = <K extends ReconcileList>(label: string, key: K, text: (entry: ReconcileReport[K][number]) => string): void => {
      const entries = r[key] as ReconcileReport[K][number][];
      const total = entries.length + (r.omitted?.[key] ?? 0);
      for (const entry of entries.slice(0, maxPerList)) {
        notes.push(`  ${label}: ${text(entry)}`);
      }
      if (total > Math.min(entries.length, maxPerList)) {
        notes.push(`  ... and ${total - Math.min(entries.length, maxPerList)} more (${label}; --report lists ${entries.length} of ${total})`);
      }
    };
    const identity = (type: string, system?: string, value?: string): string => (system ? `${type} ${system}|${value ?? ''}` : type);
    list('missing', 'missingResources', (m) => `${rowWhere(m)}: ${identity(m.type, m.system, m.value)} is not in Medplum`);
    list('extra', 'extraResources', (e) => `${e.type}/${e.id} (${e.system}|${e.value}): no row of the file names it (listed, not deleted)`);
    list(
      'duplicate',
      'duplicateResources',
      (d) => `${identity(d.type, d.system, d.value)} is held by ${d.ids.length} resources: ${d.ids.map((id) => `${d.type}/${id}`).join(', ')}${d.row ? ` (${rowWhere(d as { row: number; sourceId?: string })})` : ''}`
    );
    list('unresolved', 'unresolvedReferences', (u) => {
      const target = identity(u.target.type, u.target.system, u.target.value);
      const why =
        u.problem === 'not-found'
          ? 'no such resource in Medplum'
          : u.problem === 'ambiguous'
            ? `${u.ids?.length ?? 'several'} resources have it (${(u.ids ?? []).join(', ')})`
            : `the stored ${u.type} points ${u.ids?.length ? `at ${u.ids.join(', ')}` : 'nowhere'} instead`;
      return `${rowWhere(u)}: ${u.type}.${u.element} -> ${target}: ${why}`;
    });
    list('rejected', 'rejections', (e) => `${rowWhere(e)}: ${e.message}`);
    notes.push(`  ${r.searches} search${r.searches === 1 ? '' : 'es'} (${r.searches * 20} quota points)`);
    out.push('', `${o.file}:`, ...notes);
  }
  out.push('', 'Reconciliation only: nothing was written. Rows = mapped + rejected + skipped; mapped rows are compared with Medplum by identifier.');
  return out.join('\n');
}

/** `row 3, column gender, id P002` */
function rowWhere(at: { row: number; column?: string; sourceId?: string }): string {
  return [`row ${at.row}`, at.column && `column ${at.column}`, at.sourceId && `id ${at.sourceId}`].filter(Boolean).join(', ');
}

/** A header, a rule and rows, columns padded (the first two left-aligned, numbers right-aligned). */
function textTable(columns: readonly string[], rows: readonly string[][]): string[] {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
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
