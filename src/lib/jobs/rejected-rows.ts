import Papa from 'papaparse';
import type { RowResult } from '../report';

/** Extra columns of a rejected-rows file; the importer ignores them when the file comes back. */
export const REJECTED_ROW_COLUMN = 'source_row';
export const REJECTED_ERROR_COLUMN = 'import_error';

/**
 * Spreadsheet programs run cells starting with = + - @ (or a tab / carriage return) as formulas.
 * A leading apostrophe keeps them text when a user opens the file to fix it.
 */
export function neutralizeFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/**
 * The rows of a file that were rejected, as CSV: the original columns, the source row number and
 * the error, ready to fix and upload again. Without a header when appending to an earlier part.
 */
export function rejectedRowsCsv(header: readonly string[], rows: readonly RowResult[], withHeader = true): string {
  const data = rows.map((r) => [
    ...header.map((_, i) => neutralizeFormula(r.fields?.[i] ?? '')),
    String(r.row),
    neutralizeFormula((r.errors ?? []).map((e) => (e.column ? `${e.column}: ${e.message}` : e.message)).join('; ')),
  ]);
  return Papa.unparse(
    { fields: [...header, REJECTED_ROW_COLUMN, REJECTED_ERROR_COLUMN], data },
    { header: withHeader, newline: '\r\n', quotes: true }
  ) + (data.length ? '\r\n' : '');
}
