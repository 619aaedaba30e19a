import type { CsvDocument } from '../csv/document';
import { delimiterName, isBlankRecord } from '../csv/document';
import { ImportFileError } from '../errors';
import { detectTable, findTable, normalizeColumnName } from '../tables';
import type { TableDefinition } from '../tables/types';

/** What the structure check learned about a file: its table, columns and size. */
export interface FileShape {
  table: TableDefinition;
  /** Normalised header names, in file order. */
  header: string[];
  /** Data rows (not counting the header and blank lines). */
  dataRows: number;
  warnings: string[];
}

/**
 * Reads the whole file once before anything is written, so that problems with the file as a
 * whole (empty, unknown table, missing or duplicate columns, unclosed quotes, bad encoding)
 * stop the import with nothing written.
 */
export async function inspectCsv(
  doc: CsvDocument,
  tables: readonly TableDefinition[],
  tableName?: string
): Promise<FileShape> {
  let header: string[] | undefined;
  let dataRows = 0;
  let leadingBlankRows = 0;
  for await (const record of doc.records()) {
    if (!header) {
      // Blank lines, whitespace or bare delimiters before the header: find out whether anything follows.
      if (record.fields.every((field) => field.trim() === '')) {
        leadingBlankRows++;
        continue;
      }
      if (leadingBlankRows > 0) {
        throw new ImportFileError(
          doc.name,
          `row 1 must be the header row, but it is blank (the first non-blank row is row ${record.row})`
        );
      }
      if (/^sep=.?$/i.test(record.fields[0].trim()) && record.fields.slice(1).every((field) => field === '')) {
        throw new ImportFileError(
          doc.name,
          'row 1 is a "sep=" line (an Excel delimiter hint), not the header: delete that line and import again ' +
            '(the delimiter is detected from the header)'
        );
      }
      header = record.fields.map(normalizeColumnName);
      continue;
    }
    if (!isBlankRecord(record.fields)) {
      dataRows++;
    }
  }
  if (!header) {
    throw new ImportFileError(
      doc.name,
      leadingBlankRows > 0 ? 'the file is empty (only blank lines, no header row)' : 'the file is empty (no header row)'
    );
  }

  const warnings: string[] = [];
  if (doc.delimiter !== ',') {
    warnings.push(`read as ${delimiterName(doc.delimiter)}-separated values`);
  }
  const empty = header.findIndex((name) => !name);
  if (empty >= 0) {
    throw new ImportFileError(doc.name, `header column ${empty + 1} has no name`);
  }
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) {
      throw new ImportFileError(doc.name, `column ${name} appears more than once in the header`);
    }
    seen.add(name);
  }

  let table: TableDefinition;
  if (tableName) {
    const named = findTable(tableName, tables);
    if (!named) {
      throw new ImportFileError(
        doc.name,
        `unknown table '${tableName}' (known tables: ${tables.map((t) => t.name).join(', ')})`
      );
    }
    const missing = named.columns.filter((c) => c.required && !seen.has(c.name)).map((c) => c.name);
    if (missing.length) {
      throw new ImportFileError(doc.name, `missing required column(s) for table ${named.name}: ${missing.join(', ')}`);
    }
    table = named;
  } else {
    const match = detectTable(header, tables);
    if ('problem' in match) {
      throw new ImportFileError(doc.name, match.problem);
    }
    table = match.table;
  }

  const known = new Set(table.columns.map((c) => c.name));
  const unknown = header.filter((name) => !known.has(name));
  if (unknown.length) {
    warnings.push(`column(s) not used by table ${table.name}, ignored: ${unknown.join(', ')}`);
  }
  if (dataRows === 0) {
    warnings.push('the file has a header but no data rows');
  }
  return { table, header, dataRows, warnings };
}
