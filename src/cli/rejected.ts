import { appendFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RowResult } from '../lib';
import { rejectedRowsCsv } from '../lib/jobs/rejected-rows';

/** Failed rows held before they are appended to the file (they hold the row's cells). */
const FLUSH_ROWS = 500;

/** Where a file's rejected rows went. */
export interface RejectedRowsWritten {
  path: string;
  rows: number;
}

/**
 * The `--rejected <folder>` files: one CSV per imported file with failed rows, named as the bot
 * names them (`rejected-rows-<file name without .csv>.csv`), with `-2`, `-3`... when two files of
 * one run share a name. The file is created at the first failed row (an earlier run's file of the
 * same name is replaced) and appended to as rows fail, so memory stays flat.
 */
export class RejectedRowsFiles {
  private readonly used = new Set<string>();

  constructor(private readonly folder: string) {}

  forFile(path: string, header: readonly string[]): RejectedRowsFile {
    return new RejectedRowsFile(header, () => this.claimName(path));
  }

  private claimName(path: string): string {
    const stem = `rejected-rows-${basename(path).replace(/\.csv$/i, '')}`;
    let name = `${stem}.csv`;
    for (let n = 2; this.used.has(name.toLowerCase()); n++) {
      name = `${stem}-${n}.csv`;
    }
    this.used.add(name.toLowerCase());
    return join(this.folder, name);
  }
}

export class RejectedRowsFile {
  private pending: RowResult[] = [];
  private path: string | undefined;
  private rows = 0;

  constructor(
    private readonly header: readonly string[],
    private readonly claimPath: () => string
  ) {}

  add(result: RowResult): void {
    this.pending.push(result);
    if (this.pending.length >= FLUSH_ROWS) {
      this.flush();
    }
  }

  /** Writes what is left; where the rows went, when any failed. */
  finish(): RejectedRowsWritten | undefined {
    this.flush();
    return this.path ? { path: this.path, rows: this.rows } : undefined;
  }

  private flush(): void {
    if (this.pending.length === 0) {
      return;
    }
    const rows = this.pending;
    this.pending = [];
    if (this.path === undefined) {
      this.path = this.claimPath();
      writeFileSync(this.path, rejectedRowsCsv(this.header, rows));
    } else {
      appendFileSync(this.path, rejectedRowsCsv(this.header, rows, false));
    }
    this.rows += rows.length;
  }
}
