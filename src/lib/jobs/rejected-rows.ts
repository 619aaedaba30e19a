import Papa from 'papaparse';
import { neutralizeFormula, REJECTED_ERROR_COLUMN, REJECTED_ROW_COLUMN } from '../csv/rejected-rows-format';
import type { RowResult } from '../report';

export { neutralizeFormula, REJECTED_ERROR_COLUMN, REJECTED_ROW_COLUMN } from '../csv/rejected-rows-format';

/**
 * The rows of a file that were rejected, as CSV: the original columns, the source row number and
 * the error, ready to fix and upload again. Without a header when appending to an earlier part.
 * Header cells are neutralised like data cells: they came from the uploaded file too; the importer
 * removes the apostrophes again when the file comes back (csv/rejected-rows-format.ts). A
 * rejected-rows file that is rejected again gets fresh `source_row` and `import_error` columns
 * instead of a second pair.
 */
export function rejectedRowsCsv(header: readonly string[], rows: readonly RowResult[], withHeader = true): string {
  const kept = header
    .map((name, i) => ({ name, i }))
    .filter(({ name }) => name !== REJECTED_ROW_COLUMN && name !== REJECTED_ERROR_COLUMN);
  const data = rows.map((r) => [
    ...kept.map(({ i }) => neutralizeFormula(r.fields?.[i] ?? '')),
    String(r.row),
    neutralizeFormula((r.errors ?? []).map((e) => (e.column ? `${e.column}: ${e.message}` : e.message)).join('; ')),
  ]);
  const fields = [...kept.map(({ name }) => name), REJECTED_ROW_COLUMN, REJECTED_ERROR_COLUMN].map(neutralizeFormula);
  return Papa.unparse({ fields, data }, { header: withHeader, newline: '\r\n', quotes: true }) + (data.length ? '\r\n' : '');
}
