import Papa from 'papaparse';
import { neutralizeFormula } from '../csv/rejected-rows-format';
import type { RowResult } from '../report';

/** One planned row: what an import would do, never a cell value (CLI --plan-rows, the bot's plan Task). */
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

/** The CSV header line of plan rows (CRLF-terminated). */
export function planRowsCsvHeader(): string {
  return Papa.unparse([[...PLAN_ROWS_COLUMNS]], { newline: '\r\n', quotes: true }) + '\r\n';
}

/** Plan rows as CSV lines (CRLF-terminated): paths joined by `; `, formula-like cells neutralised as in rejected-rows files. */
export function planRowsCsvLines(rows: readonly PlanRow[]): string {
  if (rows.length === 0) {
    return '';
  }
  const data = rows.map((r) => [r.file, String(r.row), r.sourceId ?? '', r.action, r.paths.join('; '), r.detail ?? ''].map(neutralizeFormula));
  return Papa.unparse(data, { newline: '\r\n', quotes: true }) + '\r\n';
}
