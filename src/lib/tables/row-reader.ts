import { restoreNeutralizedFormula } from '../csv/rejected-rows-format';
import type { RowError } from '../report';
import { utcDay } from '../values/date-time';
import { refusedCharacters } from './identifier-chars';

/** How cells are read: as they are, or as a rejected-rows file wrote them (formulas neutralised). */
export type CellReading = 'as-is' | 'rejected-rows';

/** A cell's value, trimmed; '' when absent. Neutralising apostrophes go before trimming: they precede a tab or CR. */
export function readCell(cell: string | undefined, reading: CellReading): string {
  if (cell === undefined) {
    return '';
  }
  return (reading === 'rejected-rows' ? restoreNeutralizedFormula(cell) : cell).trim();
}

/** Where each of a table's columns sits in the file's records: worked out once per file. */
export type ColumnIndex = ReadonlyMap<string, number>;

/** The column index of a file's header for a table: its columns that the header has, and where. */
export function columnIndex(header: readonly string[], columns: readonly { name: string }[]): ColumnIndex {
  const known = new Set(columns.map((c) => c.name));
  return new Map(header.map((name, i): [string, number] => [name, i]).filter(([name]) => known.has(name)));
}

/**
 * Reads the cells of one row with validation. Each problem is recorded with its column and
 * the row fails as a whole; messages describe the problem, never the cell's value.
 * Cells are read straight from the record through the file's column index (no per-row map:
 * this runs for every row of files with millions of them).
 */
export class RowReader {
  readonly problems: RowError[] = [];

  /**
   * `cells: 'rejected-rows'` reads a rejected-rows file that came back: the apostrophes it added
   * before formula-like values are removed (see csv/rejected-rows-format.ts).
   */
  constructor(
    readonly row: number,
    private readonly fields: readonly string[],
    private readonly columns: ColumnIndex,
    readonly sourceId: string | undefined,
    private readonly cells: CellReading = 'as-is',
    /** The row key as one value (`{$key}`): a one-column key's cell, else a hash of the key cells. */
    readonly key: string = sourceId ?? ''
  ) {}

  /** A reader over named cells, for testing a table's mapping without a file. */
  static ofCells(row: number, cells: Readonly<Record<string, string>>, sourceId?: string): RowReader {
    const names = Object.keys(cells);
    return new RowReader(row, names.map((name) => cells[name]), new Map(names.map((name, i) => [name, i])), sourceId);
  }

  /** The trimmed cell, or '' when empty or absent. */
  raw(column: string): string {
    const index = this.columns.get(column);
    return index === undefined ? '' : readCell(this.fields[index], this.cells);
  }

  /**
   * Records a problem. A cell gets one problem, the first: several elements read from one cell
   * (an encounter type mapped to a class and to a display) would otherwise say it twice.
   */
  problem(column: string | undefined, message: string): void {
    if (!this.problems.some((p) => p.column === column && (column !== undefined || p.message === message))) {
      this.problems.push({ row: this.row, column, sourceId: this.sourceId, message });
    }
  }

  get ok(): boolean {
    return this.problems.length === 0;
  }

  /** A required, non-empty value. */
  text(column: string, options: { maxLength?: number } = {}): string {
    const value = this.raw(column);
    if (!value) {
      this.problem(column, `${column} is required`);
    } else if (options.maxLength && value.length > options.maxLength) {
      this.problem(column, `${column} is longer than ${options.maxLength} characters`);
    }
    return value;
  }

  /** An optional value: undefined when empty. */
  optionalText(column: string, options: { maxLength?: number } = {}): string | undefined {
    const value = this.raw(column);
    if (value && options.maxLength && value.length > options.maxLength) {
      this.problem(column, `${column} is longer than ${options.maxLength} characters`);
    }
    return value || undefined;
  }

  /**
   * A source id: required, at most 256 characters, and safe as a FHIR identifier value (see
   * identifier-chars.ts: no '|', whitespace, control, invisible or unassigned characters). A
   * refused id reads as '' (as a missing one does): the row fails, and mapping it must not build
   * searches or references from the value (a lone surrogate cannot even be percent-encoded).
   */
  sourceIdValue(column: string): string {
    const value = this.text(column, { maxLength: 256 });
    const refused = value ? refusedCharacters(value) : undefined;
    if (refused) {
      this.problem(column, `${column} must not contain ${refused} (it becomes a FHIR identifier)`);
      return '';
    }
    return value;
  }

  /** A calendar date, YYYY-MM-DD, that exists (no 2023-02-30). */
  date(column: string, options: { required?: boolean; notAfter?: Date } = {}): string | undefined {
    const value = this.raw(column);
    if (!value) {
      if (options.required !== false) {
        this.problem(column, `${column} is required`);
      }
      return undefined;
    }
    const problem = calendarDateProblem(value);
    if (problem) {
      this.problem(column, `${column} ${problem}`);
      return undefined;
    }
    if (options.notAfter && value > utcDay(options.notAfter)) {
      this.problem(column, `${column} is in the future`);
      return undefined;
    }
    return value;
  }

  /**
   * A date, or a date and time (YYYY-MM-DDThh:mm[:ss][Z|+hh:mm]). A time without a zone is
   * taken as UTC, because a FHIR dateTime with a time must carry one.
   */
  dateTime(column: string, options: { required?: boolean; notAfter?: Date } = {}): string | undefined {
    const value = this.raw(column);
    const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?$/.exec(value);
    if (!match) {
      return this.date(column, options);
    }
    const [, day, hours, minutes, seconds = '00', zone = 'Z'] = match;
    const problem = calendarDateProblem(day);
    if (problem) {
      this.problem(column, `${column} ${problem}`);
      return undefined;
    }
    if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds) > 59) {
      this.problem(column, `${column} has an impossible time of day`);
      return undefined;
    }
    const result = `${day}T${hours}:${minutes}:${seconds}${zone}`;
    if (options.notAfter && new Date(result).getTime() > options.notAfter.getTime()) {
      this.problem(column, `${column} is in the future`);
      return undefined;
    }
    return result;
  }

  /** A value from a code table; matched case-insensitively. */
  code<T>(column: string, table: Readonly<Record<string, T>>, options: { required?: boolean } = {}): T | undefined {
    const value = this.raw(column);
    if (!value) {
      if (options.required !== false) {
        this.problem(column, `${column} is required`);
      }
      return undefined;
    }
    const key = foldedKeys(table).get(value.toLowerCase());
    if (key === undefined) {
      const allowed = Object.keys(table);
      const list = allowed.length <= 12 ? `: one of ${allowed.join(', ')}` : '';
      this.problem(column, `${column} is not a known code${list}`);
      return undefined;
    }
    return table[key];
  }
}

/** Why a YYYY-MM-DD string is not a usable calendar date, or undefined when it is. */
export function calendarDateProblem(value: string): string | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) {
    return 'must be a date in YYYY-MM-DD form';
  }
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return 'is not a real calendar date';
  }
  if (year < 1800) {
    return 'is before 1800 (a placeholder date?)';
  }
  return undefined;
}

// Per-row lookups stay cheap: a table's case-folded keys are worked out once (a cut-off's day: utcDay).
const foldedKeyCache = new WeakMap<object, Map<string, string>>();

function foldedKeys(table: Readonly<Record<string, unknown>>): Map<string, string> {
  let keys = foldedKeyCache.get(table);
  if (!keys) {
    keys = new Map(Object.keys(table).map((k) => [k.toLowerCase(), k]));
    foldedKeyCache.set(table, keys);
  }
  return keys;
}
