/**
 * The rejected-rows file format, shared by its writer (jobs/rejected-rows.ts) and its reader (the
 * importer, when a fixed rejected-rows file is uploaded again): the original columns plus
 * `source_row` and `import_error`, every cell that a spreadsheet would run as a formula prefixed
 * with an apostrophe.
 */

/** Extra columns of a rejected-rows file; the importer ignores them when the file comes back. */
export const REJECTED_ROW_COLUMN = 'source_row';
export const REJECTED_ERROR_COLUMN = 'import_error';

/** Spreadsheet programs run cells starting with = + - @ (or a tab / carriage return) as formulas. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** The apostrophe neutralizeFormula adds: one directly before a formula start. */
const NEUTRALISED_FORMULA = /^'[=+\-@\t\r]/;

/** A leading apostrophe keeps a formula-like cell text when a user opens the file to fix it. */
export function neutralizeFormula(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/**
 * Undoes neutralizeFormula: drops an apostrophe directly followed by = + - @ tab or CR, so a fixed
 * rejected-rows file imports the original values. Other apostrophes are left alone.
 */
export function restoreNeutralizedFormula(value: string): string {
  return value.charCodeAt(0) === 0x27 && NEUTRALISED_FORMULA.test(value) ? value.slice(1) : value;
}

/** Whether a header (normalised column names) is a rejected-rows file's: it has both extra columns. */
export function isRejectedRowsHeader(header: readonly string[]): boolean {
  return header.includes(REJECTED_ROW_COLUMN) && header.includes(REJECTED_ERROR_COLUMN);
}
