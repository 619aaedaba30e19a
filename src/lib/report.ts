/**
 * The per-file import report: the bot's return value and the shape every later tool reads.
 * Every data row ends in exactly one state; `rows` always equals the sum of the six counters.
 */

/** The final state of one data row. */
export type RowState = 'created' | 'updated' | 'unchanged' | 'conflict' | 'failed' | 'skipped';

/** A problem with one row. `row` is the spreadsheet row number: header = 1, first data record = 2. */
export interface RowError {
  row: number;
  column?: string;
  sourceId?: string;
  message: string;
}

/** A row some of whose elements were changed in Medplum since the last import: those were kept. */
export interface RowConflict {
  row: number;
  sourceId?: string;
  /** Element paths (never values). */
  paths: string[];
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
  /** Conflicts: the element paths changed in Medplum since the import last wrote them, left as they are. */
  paths?: string[];
  /** Plan mode: the element paths the row would change. */
  changes?: string[];
  /** The row's original fields, in header order (for rejected-rows files); never logged. */
  fields?: string[];
  /**
   * Failed only because a resource it references is not in Medplum (yet): the resource type. An
   * upload job may retry such rows while the parent table's uploads are pending or recent.
   */
  missingParent?: string;
}

export interface ImportReport {
  file?: string;
  table: string;
  /** Data rows read (blank lines are not data rows). */
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  /** Rows with elements changed in Medplum since the last import, left as they are (see conflicts). */
  conflict: number;
  failed: number;
  skipped: number;
  errors: RowError[];
  skips: RowSkip[];
  conflicts: RowConflict[];
  /** File-level notes that did not stop the import (ignored columns, detected delimiter, ...). */
  warnings: string[];
  dryRun?: boolean;
  /** Plan mode: the counts are what an import would do now; nothing was written. */
  plan?: boolean;
  /** Dry runs: how many resources of each type the import would write. */
  wouldWrite?: Record<string, number>;
  /** Set when the import stopped early (time budget): the next run resumes after this row. */
  resumeAfterRow?: number;
  /** How many errors, skips and warnings were left out to keep the report storable; absent when none. */
  omitted?: Omitted;
}

/** Entries a report left out of its lists (each list says so in a final warning). */
export interface Omitted {
  errors: number;
  skips: number;
  warnings: number;
  conflicts?: number;
}

/** Most errors (and skips) kept in a report; the counters stay exact past it. Keeps reports small enough to store. */
export const MAX_REPORTED_ERRORS = 1000;
/** Most warnings in a report, the notes on what was left out included. */
export const MAX_REPORTED_WARNINGS = 50;
/** Longest warning kept; longer ones are cut, so that a report (and the Task holding it) always saves. */
export const MAX_WARNING_LENGTH = 1000;

const NONE_OMITTED: Omitted = { errors: 0, skips: 0, warnings: 0 };

/** Accumulates row results into a report. */
export class ReportBuilder {
  private readonly report: ImportReport;
  private readonly omitted: Omitted = { ...NONE_OMITTED };

  constructor(table: string, file?: string) {
    this.report = {
      file,
      table,
      rows: 0,
      created: 0,
      updated: 0,
      unchanged: 0,
      conflict: 0,
      failed: 0,
      skipped: 0,
      errors: [],
      skips: [],
      conflicts: [],
      warnings: [],
    };
  }

  warn(message: string): void {
    const warning = shortened(message);
    if (this.report.warnings.includes(warning)) {
      return;
    }
    if (this.report.warnings.length < MAX_REPORTED_WARNINGS) {
      this.report.warnings.push(warning);
    } else {
      this.omitted.warnings++;
    }
  }

  add(result: RowResult): void {
    this.report.rows++;
    this.report[result.state]++;
    if (result.state === 'failed') {
      for (const error of result.errors ?? []) {
        if (this.report.errors.length < MAX_REPORTED_ERRORS) {
          this.report.errors.push(error);
        } else {
          this.omitted.errors++;
        }
      }
    } else if (result.state === 'conflict') {
      if (this.report.conflicts.length < MAX_REPORTED_ERRORS) {
        this.report.conflicts.push({ row: result.row, sourceId: result.sourceId, paths: result.paths ?? [] });
      } else {
        this.omitted.conflicts = (this.omitted.conflicts ?? 0) + 1;
      }
    } else if (result.state === 'skipped' && !this.report.dryRun) {
      if (this.report.skips.length < MAX_REPORTED_ERRORS) {
        this.report.skips.push({ row: result.row, sourceId: result.sourceId, reason: result.reason ?? 'skipped' });
      } else {
        this.omitted.skips++;
      }
    }
  }

  set<K extends 'dryRun' | 'plan' | 'resumeAfterRow'>(key: K, value: ImportReport[K]): void {
    this.report[key] = value;
  }

  /** The report so far; the builder goes on accumulating (it is called after every batch). */
  build(): ImportReport {
    const errors = [...this.report.errors].sort((a, b) => a.row - b.row);
    return { ...this.report, conflicts: [...this.report.conflicts], ...cappedLists(errors, this.report.skips, this.report.warnings, this.omitted) };
  }
}

/** The report with its error and skip lists cut to `limit` entries; what is cut is counted as omitted. */
export function withListsCapped(report: ImportReport, limit: number): ImportReport {
  const conflicts = report.conflicts ?? [];
  if (report.errors.length <= limit && report.skips.length <= limit && conflicts.length <= limit) {
    return report;
  }
  const omitted = report.omitted ?? NONE_OMITTED;
  const cut = { ...omitted, conflicts: (omitted.conflicts ?? 0) + Math.max(0, conflicts.length - limit) };
  return {
    ...report,
    conflicts: conflicts.slice(0, limit),
    ...cappedLists(report.errors, report.skips, listedWarnings(report), cut, limit),
  };
}

/** Combines the report of a resumed run with the report of the runs before it, keeping the caps and exact counts. */
export function mergeReports(before: ImportReport, after: ImportReport): ImportReport {
  const omittedBefore = before.omitted ?? NONE_OMITTED;
  const omittedAfter = after.omitted ?? NONE_OMITTED;
  return {
    ...after,
    rows: before.rows + after.rows,
    created: before.created + after.created,
    updated: before.updated + after.updated,
    unchanged: before.unchanged + after.unchanged,
    conflict: (before.conflict ?? 0) + (after.conflict ?? 0),
    conflicts: [...(before.conflicts ?? []), ...(after.conflicts ?? [])].slice(0, MAX_REPORTED_ERRORS),
    failed: before.failed + after.failed,
    skipped: before.skipped + after.skipped,
    ...cappedLists(
      [...before.errors, ...after.errors],
      [...before.skips, ...after.skips],
      [...listedWarnings(before), ...listedWarnings(after)],
      {
        errors: omittedBefore.errors + omittedAfter.errors,
        skips: omittedBefore.skips + omittedAfter.skips,
        warnings: omittedBefore.warnings + omittedAfter.warnings,
        ...(omittedBefore.conflicts || omittedAfter.conflicts
          ? { conflicts: (omittedBefore.conflicts ?? 0) + (omittedAfter.conflicts ?? 0) }
          : {}),
      }
    ),
  };
}

/**
 * The lists of a report within the caps, with `omitted` counting everything left out (`earlier`:
 * what was left out before these lists were made) and one final warning per list that lost entries.
 */
function cappedLists(
  errors: readonly RowError[],
  skips: readonly RowSkip[],
  warnings: readonly string[],
  earlier: Omitted,
  limit = MAX_REPORTED_ERRORS
): Pick<ImportReport, 'errors' | 'skips' | 'warnings' | 'omitted'> {
  const omitted: Omitted = {
    errors: earlier.errors + Math.max(0, errors.length - limit),
    skips: earlier.skips + Math.max(0, skips.length - limit),
    warnings: earlier.warnings,
    ...(earlier.conflicts ? { conflicts: earlier.conflicts } : {}),
  };
  const listed = [...new Set(warnings.map(shortened))];
  const room = MAX_REPORTED_WARNINGS - notices({ ...omitted, warnings: 0 }).length;
  const keep = omitted.warnings > 0 || listed.length > room ? Math.min(listed.length, room - 1) : listed.length;
  omitted.warnings += listed.length - keep;
  const anyOmitted = omitted.errors + omitted.skips + omitted.warnings + (omitted.conflicts ?? 0) > 0;
  return {
    errors: errors.slice(0, limit),
    skips: skips.slice(0, limit),
    warnings: [...listed.slice(0, keep), ...notices(omitted)],
    ...(anyOmitted ? { omitted } : {}),
  };
}

/** The final warnings that say what a report left out. */
function notices(omitted: Omitted): string[] {
  return [
    omitted.errors > 0 ? `${omitted.errors} further row errors were not listed` : '',
    omitted.skips > 0 ? `${omitted.skips} further skipped rows were not listed` : '',
    (omitted.conflicts ?? 0) > 0 ? `${omitted.conflicts} further rows in conflict were not listed` : '',
    omitted.warnings > 0 ? `${omitted.warnings} further warnings were not listed (limit ${MAX_REPORTED_WARNINGS})` : '',
  ].filter((notice) => notice !== '');
}

/** A report's own warnings, without the notes on what it left out (merging writes new ones). */
function listedWarnings(report: ImportReport): string[] {
  const own = new Set(notices(report.omitted ?? NONE_OMITTED));
  return report.warnings.filter((warning) => !own.has(warning));
}

/** A warning cut to MAX_WARNING_LENGTH characters, never inside a surrogate pair. */
function shortened(warning: string): string {
  if (warning.length <= MAX_WARNING_LENGTH) {
    return warning;
  }
  let end = MAX_WARNING_LENGTH - 1;
  if (/[\uD800-\uDBFF]/.test(warning[end - 1])) {
    end--;
  }
  return `${warning.slice(0, end)}\u2026`;
}
