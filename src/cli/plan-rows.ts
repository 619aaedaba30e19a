import Papa from 'papaparse';
import { closeSync, openSync, writeSync } from 'node:fs';
import { extname } from 'node:path';
import type { RowResult } from '../lib';
import { neutralizeFormula } from '../lib/csv/rejected-rows-format';

/** Rows held before they are written (the file grows as rows are planned: memory stays flat). */
const FLUSH_ROWS = 500;

/** One planned row as `--plan-rows` writes it: what an import would do, never a cell value. */
export interface PlanRow {
  file: string;
  row: number;
  sourceId?: string;
  /** The row's predicted state: created, updated, unchanged, conflict, failed or skipped. */
  action: string;
  /** Element paths the import would change (created, updated), or those in conflict (kept). */
  paths: string[];
  /**
   * A failed row: the columns with problems (`columns: gender`; the messages are in the report:
   * some name the unknown code). A skipped row: why (the importer's or the mapping's fixed text).
   */
  detail?: string;
}

export const PLAN_ROWS_COLUMNS = ['file', 'row', 'source_id', 'action', 'paths', 'detail'] as const;

/** `.csv` or `.json`, from the file name; undefined for any other. */
export function planRowsFormat(path: string): 'csv' | 'json' | undefined {
  const ext = extname(path).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.json' ? 'json' : undefined;
}

/** A row result as a plan row. */
export function planRowOf(file: string, result: RowResult): PlanRow {
  const paths = result.state === 'conflict' ? (result.paths ?? []) : (result.changes ?? []);
  let detail: string | undefined;
  if (result.state === 'failed') {
    const columns = [...new Set((result.errors ?? []).flatMap((e) => (e.column ? [e.column] : [])))];
    detail = columns.length ? `columns: ${columns.join(', ')}` : undefined;
  } else if (result.state === 'skipped') {
    detail = result.reason;
  }
  return { file, row: result.row, ...(result.sourceId ? { sourceId: result.sourceId } : {}), action: result.state, paths, ...(detail ? { detail } : {}) };
}

/**
 * The `--plan-rows <file>` output: one record per row of every planned file, as CSV (paths joined
 * by `; `, formula-like cells neutralised as in rejected-rows files) or as a JSON array. Written
 * as rows are planned (memory stays flat), so in the order they were planned: a row that fails
 * validation comes before the rows of the batch it was read in.
 */
export class PlanRowsFile {
  private readonly fd: number;
  private readonly format: 'csv' | 'json';
  private pending: PlanRow[] = [];
  private written = 0;

  constructor(readonly path: string) {
    const format = planRowsFormat(path);
    if (!format) {
      throw new Error(`--plan-rows: ${path} must end in .csv or .json`);
    }
    this.format = format;
    this.fd = openSync(path, 'w');
    writeSync(this.fd, format === 'csv' ? Papa.unparse([[...PLAN_ROWS_COLUMNS]], { newline: '\r\n', quotes: true }) + '\r\n' : '[');
  }

  /** Rows written so far (and pending). */
  get rows(): number {
    return this.written + this.pending.length;
  }

  add(file: string, result: RowResult): void {
    this.pending.push(planRowOf(file, result));
    if (this.pending.length >= FLUSH_ROWS) {
      this.flush();
    }
  }

  close(): void {
    this.flush();
    writeSync(this.fd, this.format === 'json' ? (this.written ? '\n]\n' : ']\n') : '');
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.pending.length === 0) {
      return;
    }
    const rows = this.pending;
    this.pending = [];
    if (this.format === 'csv') {
      const data = rows.map((r) =>
        [r.file, String(r.row), r.sourceId ?? '', r.action, r.paths.join('; '), r.detail ?? ''].map(neutralizeFormula)
      );
      writeSync(this.fd, Papa.unparse(data, { newline: '\r\n', quotes: true }) + '\r\n');
    } else {
      const lead = this.written ? ',\n' : '\n';
      writeSync(this.fd, lead + rows.map((r) => JSON.stringify(r)).join(',\n'));
    }
    this.written += rows.length;
  }
}
