import { closeSync, openSync, writeSync } from 'node:fs';
import { extname } from 'node:path';
import type { RowResult } from '../lib';
import type { PlanRow } from '../lib/plan/plan-rows';
import { planRowOf, planRowsCsvHeader, planRowsCsvLines } from '../lib/plan/plan-rows';

/** Rows held before they are written (the file grows as rows are planned: memory stays flat). */
const FLUSH_ROWS = 500;

/** `.csv` or `.json`, from the file name; undefined for any other. */
export function planRowsFormat(path: string): 'csv' | 'json' | undefined {
  const ext = extname(path).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.json' ? 'json' : undefined;
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
    writeSync(this.fd, format === 'csv' ? planRowsCsvHeader() : '[');
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
      writeSync(this.fd, planRowsCsvLines(rows));
    } else {
      const lead = this.written ? ',\n' : '\n';
      writeSync(this.fd, lead + rows.map((r) => JSON.stringify(r)).join(',\n'));
    }
    this.written += rows.length;
  }
}
