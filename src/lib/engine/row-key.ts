import { hashA, hashB } from './id-registry';

/** Separates key cells before hashing: a control character no cell keeps (cells are trimmed, ids refuse them). */
const CELL_SEPARATOR = '\u001f';

/** The key cells as one text, for duplicate checks. */
export function keyText(cells: readonly string[]): string {
  return cells.length === 1 ? cells[0] : cells.join(CELL_SEPARATOR);
}

/**
 * A row key as one value (`{$key}` in mappings): a one-column key is its cell; a key of several
 * columns, or the whole row, is a 16-hex-digit hash of the cells, stable while they do not change.
 */
export function keyValue(cells: readonly string[], singleColumn: boolean): string {
  if (singleColumn) {
    return cells[0] ?? '';
  }
  const text = keyText(cells);
  return hashA(text).toString(16).padStart(8, '0') + hashB(text).toString(16).padStart(8, '0');
}
