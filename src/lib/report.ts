/**
 * The per-file import report: the bot's return value and the shape every later tool reads.
 * Every data row ends in exactly one state; `rows` always equals the sum of the five counters.
 */

/** The final state of one data row. */
export type RowState = 'created' | 'updated' | 'unchanged' | 'failed' | 'skipped';

/** A problem with one row. `row` is the spreadsheet row number: header = 1, first data record = 2. */
export interface RowError {
  row: number;
  column?: string;
  sourceId?: string;
  message: string;
}

/** A row deliberately not written, with the reason. */
export interface RowSkip {
  row: number;
  sourceId?: string;
  reason: string;
}

/** The outcome of one row, streamed to `onRowResult` as rows finish. */
export interface RowResult {
  row: number;
  sourceId?: string;
  state: RowState;
  errors?: RowError[];
  reason?: string;
  /** The row's original fields, in header order (for rejected-rows files); never logged. */
  fields?: string[];
}

export interface ImportReport {
  file?: string;
  table: string;
  /** Data rows read (blank lines are not data rows). */
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
  skipped: number;
  errors: RowError[];
  skips: RowSkip[];
  /** File-level notes that did not stop the import (ignored columns, detected delimiter, ...). */
  warnings: string[];
  dryRun?: boolean;
  /** Dry runs: how many resources of each type the import would write. */
  wouldWrite?: Record<string, number>;
  /** Set when the import stopped early (time budget): the next run resumes after this row. */
  resumeAfterRow?: number;
}

/** Most errors kept in a report; the counters stay exact past it. Keeps reports small enough to store. */
export const MAX_REPORTED_ERRORS = 1000;

/** Accumulates row results into a report. */
export class ReportBuilder {
  private readonly report: ImportReport;
  private omittedErrors = 0;

  constructor(table: string, file?: string) {
    this.report = {
      file,
      table,
      rows: 0,
      created: 0,
      updated: 0,
      unchanged: 0,
      failed: 0,
      skipped: 0,
      errors: [],
      skips: [],
      warnings: [],
    };
  }

  warn(message: string): void {
    this.report.warnings.push(message);
  }

  add(result: RowResult): void {
    this.report.rows++;
    this.report[result.state]++;
    if (result.state === 'failed') {
      for (const error of result.errors ?? []) {
        if (this.report.errors.length < MAX_REPORTED_ERRORS) {
          this.report.errors.push(error);
        } else {
          this.omittedErrors++;
        }
      }
    } else if (result.state === 'skipped' && !this.report.dryRun) {
      if (this.report.skips.length < MAX_REPORTED_ERRORS) {
        this.report.skips.push({ row: result.row, sourceId: result.sourceId, reason: result.reason ?? 'skipped' });
      }
    }
  }

  set<K extends 'dryRun' | 'resumeAfterRow'>(key: K, value: ImportReport[K]): void {
    this.report[key] = value;
  }

  build(): ImportReport {
    const report = { ...this.report, errors: [...this.report.errors], warnings: [...this.report.warnings] };
    if (this.omittedErrors > 0) {
      report.warnings.push(`${this.omittedErrors} further row errors were not listed (limit ${MAX_REPORTED_ERRORS})`);
    }
    report.errors.sort((a, b) => a.row - b.row);
    return report;
  }
}

/** Combines the report of a resumed run with the report of the runs before it. */
export function mergeReports(before: ImportReport, after: ImportReport): ImportReport {
  const errors = [...before.errors, ...after.errors];
  const skips = [...before.skips, ...after.skips];
  return {
    ...after,
    rows: before.rows + after.rows,
    created: before.created + after.created,
    updated: before.updated + after.updated,
    unchanged: before.unchanged + after.unchanged,
    failed: before.failed + after.failed,
    skipped: before.skipped + after.skipped,
    errors: errors.slice(0, MAX_REPORTED_ERRORS),
    skips: skips.slice(0, MAX_REPORTED_ERRORS),
    warnings: [...new Set([...before.warnings, ...after.warnings])],
  };
}
