import type { CsvDocument } from '../csv/document';
import { delimiterName, isBlankRecord } from '../csv/document';
import { isRejectedRowsHeader, restoreNeutralizedFormula } from '../csv/rejected-rows-format';
import { ImportFileError } from '../errors';
import { describeTables, detectTable, findTable, knownColumnNames, normalizeColumnName } from '../tables';
import type { TableDefinition } from '../tables/types';

/** What the structure check learned about a file: its table, columns and size. */
export interface FileShape {
  table: TableDefinition;
  /** Normalised header names, in file order ('' for ignored trailing columns without a name). */
  header: string[];
  /** Data rows (not counting the header and blank lines). */
  dataRows: number;
  warnings: string[];
  /**
   * A rejected-rows file coming back (it has `source_row` and `import_error` columns): the
   * apostrophes it put before formula-like values are removed when its cells are read.
   */
  rejectedRowsFile: boolean;
}

/** Most unused column names listed in the "not used, ignored" warning. */
export const MAX_LISTED_UNUSED_COLUMNS = 20;

/** What one pass over the file found, before any judgement. */
interface FileScan {
  /** Header cells as written (trimmed), for telling a header from data; never put in messages. */
  rawHeader: string[];
  header: string[];
  /** The first data record's cells, trimmed. */
  firstData?: string[];
  dataRows: number;
  /** Column positions after the last named header column, and the first row with a value there. */
  trailing: { from: number; firstValueRow?: number };
  rejectedRowsFile: boolean;
}

/**
 * Reads the whole file once before anything is written, so that problems with the file as a
 * whole (empty, no header row, unknown table, missing or duplicate columns, unclosed quotes, bad
 * encoding) stop the import with nothing written. Header cells may be data (a file without its
 * header row): messages name known column names and column positions only.
 */
export async function inspectCsv(
  doc: CsvDocument,
  tables: readonly TableDefinition[],
  tableName?: string
): Promise<FileShape> {
  const named = tableName === undefined ? undefined : findTable(tableName, tables);
  if (tableName !== undefined && !named) {
    throw new ImportFileError(doc.name, `unknown table '${tableName}' (known tables: ${tables.map((t) => t.name).join(', ')})`);
  }
  const scan = await scanFile(doc);
  const warnings: string[] = [];
  if (doc.delimiter !== ',') {
    warnings.push(`read as ${delimiterName(doc.delimiter)}-separated values`);
  }

  const checked = checkHeader(scan, tables, named, doc.name);
  if ('problem' in checked) {
    const problem = looksLikeData(scan.rawHeader, scan.firstData)
      ? `row 1 looks like data, not a header row: add the header row${named ? ` (${describeTables([named])})` : ''}`
      : checked.problem;
    throw new ImportFileError(doc.name, problem);
  }
  const { table } = checked;

  const ignored = ignoredTrailingColumns(scan);
  if (ignored) {
    warnings.push(ignored);
  }
  const unused = unusedColumns(scan.header, table);
  if (unused) {
    warnings.push(`column(s) not used by table ${table.name}, ignored: ${unused}`);
  }
  if (scan.dataRows === 0) {
    warnings.push('the file has a header but no data rows');
  }
  return { table, header: scan.header, dataRows: scan.dataRows, warnings, rejectedRowsFile: scan.rejectedRowsFile };
}

async function scanFile(doc: CsvDocument): Promise<FileScan> {
  let scan: FileScan | undefined;
  let leadingBlankRows = 0;
  for await (const record of doc.records()) {
    if (!scan) {
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
      scan = headerScan(record.fields);
      continue;
    }
    if (isBlankRecord(record.fields)) {
      continue;
    }
    scan.dataRows++;
    scan.firstData ??= record.fields.map((field) => field.trim());
    if (scan.trailing.firstValueRow === undefined && hasValueFrom(record.fields, scan.trailing.from)) {
      scan.trailing.firstValueRow = record.row;
    }
  }
  if (!scan) {
    throw new ImportFileError(
      doc.name,
      leadingBlankRows > 0 ? 'the file is empty (only blank lines, no header row)' : 'the file is empty (no header row)'
    );
  }
  return scan;
}

function headerScan(fields: readonly string[]): FileScan {
  const rawHeader = fields.map((field) => field.trim());
  const rejectedRowsFile = isRejectedRowsHeader(fields.map(normalizeColumnName));
  const header = fields.map((field) => normalizeColumnName(rejectedRowsFile ? restoreNeutralizedFormula(field) : field));
  let from = header.length;
  while (from > 0 && header[from - 1] === '') {
    from--;
  }
  return { rawHeader, header, dataRows: 0, trailing: { from }, rejectedRowsFile };
}

function hasValueFrom(fields: readonly string[], from: number): boolean {
  for (let i = from; i < fields.length; i++) {
    if (fields[i].trim() !== '') {
      return true;
    }
  }
  return false;
}

/** The table the header belongs to, or the first thing wrong with the header. */
function checkHeader(
  scan: FileScan,
  tables: readonly TableDefinition[],
  named: TableDefinition | undefined,
  fileName: string
): { table: TableDefinition } | { problem: string } {
  const { header, trailing } = scan;
  const unnamed = header.findIndex((name, i) => !name && (i < trailing.from || trailing.firstValueRow !== undefined));
  if (unnamed >= 0) {
    const values = unnamed >= trailing.from ? `, but row ${trailing.firstValueRow} has a value in it` : '';
    return { problem: `header column ${unnamed + 1} has no name${values}` };
  }
  const repeated = repeatedColumn(header, knownColumnNames(tables));
  if (repeated) {
    return { problem: repeated };
  }
  if (!named) {
    return detectTable(header, tables, fileName);
  }
  const present = new Set(header);
  const missing = named.columns.filter((c) => c.required && !present.has(c.name)).map((c) => c.name);
  return missing.length
    ? { problem: `missing required column(s) for table ${named.name}: ${missing.join(', ')}` }
    : { table: named };
}

/**
 * Names the first column that appears twice: by its name when it is a known column name, else by
 * positions only, since an unknown header cell may be data.
 */
function repeatedColumn(header: readonly string[], known: ReadonlySet<string>): string | undefined {
  const firstAt = new Map<string, number>();
  for (let i = 0; i < header.length; i++) {
    const name = header[i];
    if (!name) {
      continue;
    }
    const first = firstAt.get(name);
    if (first === undefined) {
      firstAt.set(name, i);
    } else if (known.has(name)) {
      return `column ${name} appears more than once in the header`;
    } else {
      return `header columns ${first + 1} and ${i + 1} have the same name`;
    }
  }
  return undefined;
}

function ignoredTrailingColumns({ header, trailing }: FileScan): string | undefined {
  const count = header.length - trailing.from;
  if (count === 0) {
    return undefined;
  }
  const which = count === 1 ? `column ${trailing.from + 1} has` : `columns ${trailing.from + 1}-${header.length} have`;
  return `header ${which} no name and no values (trailing delimiters, as spreadsheets write them): ignored`;
}

/**
 * The header's columns the table does not use, as a list for the warning: at most
 * MAX_LISTED_UNUSED_COLUMNS, and by position where a name does not look like a column name.
 */
function unusedColumns(header: readonly string[], table: TableDefinition): string | undefined {
  const known = new Set(table.columns.map((c) => c.name));
  const unused = header
    .map((name, i) => ({ name, i }))
    .filter(({ name }) => name && !known.has(name))
    .map(({ name, i }) => (looksLikeColumnName(name) ? name : `column ${i + 1}`));
  if (unused.length === 0) {
    return undefined;
  }
  const listed = unused.slice(0, MAX_LISTED_UNUSED_COLUMNS).join(', ');
  const more = unused.length - MAX_LISTED_UNUSED_COLUMNS;
  return more > 0 ? `${listed} and ${more} more` : listed;
}

/** A plausible column name: starts with a letter, short, letters, digits and a little punctuation. */
function looksLikeColumnName(name: string): boolean {
  return /^\p{L}[\p{L}\p{M}\p{N}_.#()/%]{0,63}$/u.test(name);
}

type CellKind = 'empty' | 'number' | 'date' | 'with-digits' | 'text';

/** What a cell holds, coarsely: enough to tell a header row from a data row. */
function cellKind(cell: string): CellKind {
  if (cell === '') {
    return 'empty';
  }
  if (/^[+-]?(\d+([.,]\d+)*|[.,]\d+)$/.test(cell)) {
    return 'number';
  }
  if (/^\d{4}-\d{1,2}-\d{1,2}([T ].*)?$/.test(cell) || /^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$/.test(cell)) {
    return 'date';
  }
  return /\d/.test(cell) ? 'with-digits' : 'text';
}

/**
 * Whether row 1 is data rather than a header: it holds a number or a date (no column name is
 * one), or it has the same shape as the first data row (the same kind of cell in every column,
 * ids with digits among them).
 */
function looksLikeData(rowOne: readonly string[], firstData: readonly string[] | undefined): boolean {
  const kinds = rowOne.map(cellKind);
  if (kinds.some((kind) => kind === 'number' || kind === 'date')) {
    return true;
  }
  if (!firstData || firstData.length !== rowOne.length) {
    return false;
  }
  return kinds.includes('with-digits') && kinds.every((kind, i) => kind === cellKind(firstData[i]));
}
