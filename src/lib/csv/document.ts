import Papa from 'papaparse';
import { ImportFileError } from '../errors';

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

/** Rejects text that is not CSV at all: binary data, or bytes that were not UTF-8. */
export function checkText(name: string, text: string): void {
  const nul = text.indexOf('\u0000');
  if (nul >= 0 && looksLikeUtf16(text)) {
    throw new ImportFileError(name, 'the file is UTF-16 text, not UTF-8; re-export it as UTF-8');
  }
  if (nul >= 0) {
    throw new ImportFileError(name, `the file is binary, not CSV text (NUL byte on line ${lineOf(text, nul)})`);
  }
  const replacement = text.indexOf('\uFFFD');
  if (replacement >= 0) {
    throw new ImportFileError(
      name,
      `the file is not valid UTF-8 (undecodable bytes on line ${lineOf(text, replacement)}); re-export it as UTF-8`
    );
  }
}

/**
 * UTF-16 bytes read as UTF-8: its byte-order mark (FF FE / FE FF) became two replacement
 * characters, and every ASCII character has a NUL beside it.
 */
function looksLikeUtf16(text: string): boolean {
  const start = text.startsWith('\uFFFD\uFFFD') ? 2 : 0;
  const sample = text.slice(start, start + 64);
  return sample.length >= 4 && (/^(?:[^\0]\0)+[^\0]?$/.test(sample) || /^(?:\0[^\0])+\0?$/.test(sample));
}

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
