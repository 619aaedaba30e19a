import Papa from 'papaparse';
import { ImportFileError } from '../errors';
import { binaryProblem, nonCsvProblem, notUtf8Problem, SNIFF_BYTES } from './sniff';

/** One CSV record with its spreadsheet row number (header = 1, first data record = 2). */
export interface CsvRecord {
  row: number;
  fields: string[];
  /** A problem with how this record is quoted; the row fails, the file goes on. */
  malformed?: string;
}

/** A CSV file that can be read more than once: once to check its structure, once to import it. */
export interface CsvDocument {
  readonly name: string;
  readonly delimiter: string;
  records(): AsyncIterable<CsvRecord>;
}

export const SUPPORTED_DELIMITERS = [',', ';', '\t', '|'] as const;

const delimiterNames: Record<string, string> = { ',': 'comma', ';': 'semicolon', '\t': 'tab', '|': 'pipe' };

export function delimiterName(delimiter: string): string {
  return delimiterNames[delimiter] ?? JSON.stringify(delimiter);
}

/**
 * Picks the delimiter from the header line: comma when it has one, else the separator it uses
 * most (semicolons from European spreadsheet exports, tabs from TSV exports).
 */
export function detectDelimiter(headerLine: string): string {
  let best = ',';
  let bestCount = 0;
  for (const candidate of SUPPORTED_DELIMITERS) {
    const count = headerLine.split(candidate).length - 1;
    if (candidate === ',' && count > 0) {
      return ',';
    }
    if (count > bestCount) {
      best = candidate;
      bestCount = count;
    }
  }
  return best;
}

/**
 * Rejects text that is not CSV at all: another format (workbook, PDF, image, HTML page, UTF-16
 * text), binary data, or bytes that were not UTF-8. The text was decoded before it got here, so
 * formats are told from what lossy decoding keeps of their first bytes (see csv/sniff.ts).
 */
export function checkText(name: string, text: string): void {
  const format = nonCsvProblem(utf8.encode(text.slice(0, SNIFF_BYTES)), { lossy: true });
  if (format) {
    throw new ImportFileError(name, format);
  }
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    throw new ImportFileError(name, binaryProblem(lineOf(text, nul)));
  }
  const replacement = text.indexOf('\uFFFD');
  if (replacement >= 0) {
    // The original bytes are gone (U+FFFD replaced them), so no guess at their encoding.
    throw new ImportFileError(name, notUtf8Problem(lineOf(text, replacement)));
  }
}

const utf8 = new TextEncoder();

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
  }
  return line;
}

export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** A record of one empty field is a blank line: it keeps its row number but holds no data. */
export function isBlankRecord(fields: string[]): boolean {
  return fields.length === 1 && fields[0].trim() === '';
}

/**
 * Turns papaparse step results into records, numbering them as a spreadsheet would.
 * An unclosed quote swallows the rest of the file, so it is a whole-file error.
 */
export class RecordNumberer {
  private row = 0;

  constructor(private readonly name: string) {}

  next(results: Papa.ParseStepResult<string[]>): CsvRecord {
    this.row++;
    const record: CsvRecord = { row: this.row, fields: results.data };
    for (const error of results.errors) {
      if (error.code === 'MissingQuotes') {
        throw new ImportFileError(this.name, `unclosed quote in the record starting at row ${this.row}`);
      }
      record.malformed = `malformed quoting (${error.message})`;
    }
    return record;
  }
}

/** A CSV document over text already in memory (bot input, downloaded uploads). */
export function csvFromText(name: string, rawText: string, options: { delimiter?: string } = {}): CsvDocument {
  const text = stripBom(rawText);
  checkText(name, text);
  return checkedTextDocument(name, text, options);
}

/** A CSV document over text already known to be text (checked, byte-order mark dropped). */
export function checkedTextDocument(name: string, text: string, options: { delimiter?: string } = {}): CsvDocument {
  const firstLineEnd = text.search(/\r?\n/);
  const delimiter = options.delimiter ?? detectDelimiter(firstLineEnd >= 0 ? text.slice(0, firstLineEnd) : text);
  let parsed: CsvRecord[] | undefined;

  const parseAll = (): CsvRecord[] => {
    const records: CsvRecord[] = [];
    const numberer = new RecordNumberer(name);
    Papa.parse<string[]>(text, {
      delimiter,
      skipEmptyLines: false,
      step: (results) => {
        records.push(numberer.next(results));
      },
    });
    // papaparse reports a trailing newline as one last empty record; it is not a row.
    const last = records.at(-1);
    if (last && isBlankRecord(last.fields) && /\r?\n$/.test(text)) {
      records.pop();
    }
    return records;
  };

  return {
    name,
    delimiter,
    async *records() {
      parsed ??= parseAll();
      yield* parsed;
    },
  };
}
