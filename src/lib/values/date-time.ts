/**
 * Reading CSV cell text as FHIR date, dateTime and instant values, in declared formats.
 *
 * Formats are compiled once per mapping into anchored regular expressions; `read` runs once per
 * cell (a million times in a large import), so it does no allocation beyond the match and the
 * result, and time zone offsets come from a per-zone cache rather than from Intl on every call.
 *
 * Problems describe what is wrong and never quote the cell: cells hold patient data.
 * Runs inside the bot sandbox too: only Intl and Date, no Node globals.
 */
import { isTimeZone, zoneOffsets } from './time-zones';

export { isTimeZone };

export type DateKind = 'date' | 'dateTime' | 'instant';

/** Formats compiled once per mapping; parse runs per cell (hot path). */
export interface DateReader {
  readonly kind: DateKind;
  /** The formats, as written, for messages. */
  readonly formats: readonly string[];
  /** text is already trimmed and non-empty. timeZone: IANA name for values written without a zone. */
  read(text: string, timeZone: string): { value: string } | { problem: string };
}

/** A format's regular expression and which capture group holds each part (0: the format has no such part). */
interface CompiledFormat {
  readonly pattern: RegExp;
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly fraction: number;
  readonly zone: number;
}

type Part = Exclude<keyof CompiledFormat, 'pattern'>;

type ReadResult = { value: string } | { problem: string };

const ISO = 'ISO';

const ZONE_PATTERN = '(Z|[+-]\\d{2}:?\\d{2})';

/**
 * ISO 8601 as FHIR writes it, per kind. Groups: year, month, day, hour, minute, second,
 * fraction, zone. `T` or a space between date and time; fractions of 1 to 9 digits.
 */
const ISO_PATTERNS: Readonly<Record<DateKind, RegExp>> = {
  date: /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/,
  dateTime: new RegExp(
    `^(\\d{4})(?:-(\\d{2})(?:-(\\d{2})(?:[T ](\\d{2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,9}))?)?${ZONE_PATTERN}?)?)?)?$`
  ),
  instant: new RegExp(`^(\\d{4})-(\\d{2})-(\\d{2})[T ](\\d{2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,9}))?)?${ZONE_PATTERN}?$`),
};

function isoFormat(kind: DateKind): CompiledFormat {
  const pattern = ISO_PATTERNS[kind];
  if (kind === 'date') {
    return { pattern, year: 1, month: 2, day: 3, hour: 0, minute: 0, second: 0, fraction: 0, zone: 0 };
  }
  return { pattern, year: 1, month: 2, day: 3, hour: 4, minute: 5, second: 6, fraction: 7, zone: 8 };
}

/** The tokens of the format language: the part each fills and the digits it matches. */
interface Token {
  readonly part: Part;
  readonly pattern: string;
  /** Matches one or two digits (or 1-9 for fractions): the digits around it need a separator to be told apart. */
  readonly variableWidth?: true;
}

/** `.S`, `.SSS`, `.SSSSSS`...: a dot and any number of fraction digits, kept as written. */
const FRACTION: Token = { part: 'fraction', pattern: '\\.(\\d{1,9})', variableWidth: true };

const TOKENS: Readonly<Record<string, Token>> = {
  YYYY: { part: 'year', pattern: '(\\d{4})' },
  MM: { part: 'month', pattern: '(\\d{2})' },
  M: { part: 'month', pattern: '(\\d{1,2})', variableWidth: true },
  DD: { part: 'day', pattern: '(\\d{2})' },
  D: { part: 'day', pattern: '(\\d{1,2})', variableWidth: true },
  hh: { part: 'hour', pattern: '(\\d{2})' },
  mm: { part: 'minute', pattern: '(\\d{2})' },
  ss: { part: 'second', pattern: '(\\d{2})' },
  Z: { part: 'zone', pattern: ZONE_PATTERN },
};

const LITERALS = new Set(['-', '/', '.', ':', ' ', 'T']);

const PART_NAMES: Readonly<Record<Part, string>> = {
  year: 'the year',
  month: 'the month',
  day: 'the day',
  hour: 'the hours',
  minute: 'the minutes',
  second: 'the seconds',
  fraction: 'the fraction of a second',
  zone: 'the zone',
};

/** Common spellings from other date libraries, to point at ours. */
const HINTS: Readonly<Record<string, string>> = {
  yyyy: 'YYYY',
  YY: 'YYYY',
  yy: 'YYYY',
  dd: 'DD',
  d: 'D',
  HH: 'hh',
  H: 'hh',
};

/**
 * Compiles the formats of one value (or the defaults of a mapping). `ISO` names ISO 8601:
 * dates YYYY, YYYY-MM, YYYY-MM-DD (kinds date and dateTime) and date-times
 * YYYY-MM-DDThh:mm[:ss[.fraction]][zone] (kinds dateTime and instant).
 */
export function compileDateFormats(kind: DateKind, formats: readonly string[]): DateReader | { error: string } {
  if (formats.length === 0) {
    return { error: 'no date formats given' };
  }
  const compiled: CompiledFormat[] = [];
  for (const format of formats) {
    const result = format === ISO ? isoFormat(kind) : compileFormat(kind, format);
    if ('error' in result) {
      return result;
    }
    compiled.push(result);
  }
  return new FormatsReader(kind, [...formats], compiled);
}

function compileFormat(kind: DateKind, format: string): CompiledFormat | { error: string } {
  if (format.trim() === '') {
    return { error: `format "${format}" is empty` };
  }
  if (format.toUpperCase() === ISO) {
    return { error: `unknown format "${format}" (write ${ISO})` };
  }
  const groups: Partial<Record<Part, number>> = {};
  const sources: string[] = [];
  // Variable-width tokens in one unbroken run of digits would make the run ambiguous (M then D: is 111 1/11 or 11/1?).
  let variableInRun: string | undefined;
  let group = 0;
  let i = 0;
  while (i < format.length) {
    const token = nextToken(format, i);
    i += token.length;
    if (LITERALS.has(token)) {
      sources.push(escapeLiteral(token));
      variableInRun = undefined;
      continue;
    }
    if (token.startsWith('.S')) {
      variableInRun = undefined; // its dot ends the run before it
    }
    const known = token.startsWith('.S') ? FRACTION : TOKENS[token];
    if (!known) {
      const hint = HINTS[token] ?? (token.startsWith('S') ? '.SSS' : undefined);
      return { error: `unknown token "${token}" in format "${format}"${hint ? ` (write ${hint})` : ''}` };
    }
    if (groups[known.part] !== undefined) {
      return { error: `format "${format}" has ${PART_NAMES[known.part]} twice` };
    }
    if (known.part === 'zone') {
      variableInRun = undefined; // a zone starts with Z, + or -: it ends the run of digits
    } else if (known.variableWidth) {
      if (variableInRun) {
        return { error: `format "${format}" needs a separator between "${variableInRun}" and "${token}"` };
      }
      variableInRun = token;
    }
    groups[known.part] = ++group;
    sources.push(known.pattern);
  }
  const compiled: CompiledFormat = {
    pattern: new RegExp(`^${sources.join('')}$`),
    year: groups.year ?? 0,
    month: groups.month ?? 0,
    day: groups.day ?? 0,
    hour: groups.hour ?? 0,
    minute: groups.minute ?? 0,
    second: groups.second ?? 0,
    fraction: groups.fraction ?? 0,
    zone: groups.zone ?? 0,
  };
  const problem = structureProblem(kind, compiled);
  return problem ? { error: `format "${format}" ${problem}` } : compiled;
}

/** The next token: a `.S...` fraction, a run of one letter, or a single other character. */
function nextToken(format: string, start: number): string {
  const first = format[start];
  if (first === '.' && format[start + 1] === 'S') {
    let end = start + 1;
    while (format[end] === 'S') {
      end++;
    }
    return format.slice(start, end);
  }
  if (/[A-Za-z]/.test(first)) {
    let end = start + 1;
    while (format[end] === first) {
      end++;
    }
    return format.slice(start, end);
  }
  return first;
}

function escapeLiteral(literal: string): string {
  return literal === '.' ? '\\.' : literal === '/' ? '\\/' : literal;
}

/** Each part needs the larger ones (no day without a month, no time without a day...). */
function structureProblem(kind: DateKind, f: CompiledFormat): string | undefined {
  const hasTime = f.hour !== 0 || f.minute !== 0 || f.second !== 0 || f.fraction !== 0;
  if (!f.year) {
    return 'has no year (YYYY)';
  }
  if (f.day && !f.month) {
    return 'has a day but no month';
  }
  if (hasTime && !(f.month && f.day)) {
    return 'has a time but not a whole date (year, month and day)';
  }
  if (hasTime && !(f.hour && f.minute)) {
    return 'has a time without both hours (hh) and minutes (mm)';
  }
  if (f.fraction && !f.second) {
    return 'has a fraction of a second (.SSS) but no seconds (ss)';
  }
  if (f.zone && !hasTime) {
    return 'has a zone (Z) but no time';
  }
  if (kind === 'date' && hasTime) {
    return 'has a time, but a date has none';
  }
  if (kind === 'instant' && !hasTime) {
    return 'has no time, but an instant needs one (hh:mm)';
  }
  return undefined;
}

class FormatsReader implements DateReader {
  private readonly mismatch: string;

  constructor(
    readonly kind: DateKind,
    readonly formats: readonly string[],
    private readonly compiled: readonly CompiledFormat[]
  ) {
    const noun = kind === 'date' ? 'a date' : 'a date-time';
    const shown = formats.map((format) => (format === ISO ? 'ISO 8601' : format));
    this.mismatch =
      shown.length === 1
        ? `must be ${noun} in the format ${shown[0]}`
        : `must be ${noun} in one of the formats ${shown.join(', ')}`;
  }

  /**
   * The first format that reads the text into a valid value wins. When the text has the shape
   * of a format but is not valid in it (a 13th month, a time lost to daylight saving), the
   * later formats still get their chance (13/05/2023 can be DD/MM/YYYY after MM/DD/YYYY);
   * when none reads it, the first such problem is the answer: it says more than "not in the formats".
   */
  read(text: string, timeZone: string): ReadResult {
    let firstProblem: ReadResult | undefined;
    for (const format of this.compiled) {
      const match = format.pattern.exec(text);
      if (match === null) {
        continue;
      }
      const result = readMatch(match, format, timeZone);
      if ('value' in result) {
        return result;
      }
      firstProblem ??= result;
    }
    return firstProblem ?? { problem: this.mismatch };
  }
}

// Shared by every cell, so frozen: a caller that edits a problem fails loudly instead of changing the next one.
const NOT_A_DATE = Object.freeze({ problem: 'is not a real calendar date' });
const NOT_A_TIME = Object.freeze({ problem: 'has an impossible time of day' });
const BEFORE_1800 = Object.freeze({ problem: 'is before 1800 (a placeholder date?)' });
const OFFSET_TOO_LARGE = Object.freeze({ problem: 'has a time zone offset beyond ±14:00' });
const NOT_AN_OFFSET = Object.freeze({ problem: 'has an impossible time zone offset (minutes above 59)' });

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function readMatch(match: RegExpExecArray, format: CompiledFormat, timeZone: string): ReadResult {
  const yearText = match[format.year];
  const year = digits(yearText);
  const monthText = format.month ? match[format.month] : undefined;
  if (monthText === undefined) {
    return year < 1800 ? BEFORE_1800 : { value: yearText };
  }
  const month = digits(monthText);
  if (month < 1 || month > 12) {
    return NOT_A_DATE;
  }
  const dayText = format.day ? match[format.day] : undefined;
  if (dayText === undefined) {
    return year < 1800 ? BEFORE_1800 : { value: `${yearText}-${pad2(month)}` };
  }
  const day = digits(dayText);
  if (day < 1 || day > daysInMonth(year, month)) {
    return NOT_A_DATE;
  }
  if (year < 1800) {
    return BEFORE_1800;
  }
  const date = `${yearText}-${pad2(month)}-${pad2(day)}`;
  const hourText = format.hour ? match[format.hour] : undefined;
  if (hourText === undefined) {
    return { value: date };
  }
  const hour = digits(hourText);
  const minute = digits(match[format.minute]);
  const secondText = format.second ? match[format.second] : undefined;
  const second = secondText === undefined ? 0 : digits(secondText);
  if (hour > 23 || minute > 59 || second > 59) {
    return NOT_A_TIME;
  }
  const fractionText = format.fraction ? match[format.fraction] : undefined;
  const fraction = fractionText === undefined ? '' : `.${fractionText}`;
  const time = `T${pad2(hour)}:${pad2(minute)}:${pad2(second)}${fraction}`;
  const zoneText = format.zone ? match[format.zone] : undefined;
  if (zoneText !== undefined) {
    const zone = normalizedZone(zoneText);
    return typeof zone === 'string' ? { value: date + time + zone } : zone;
  }
  return inTimeZone(date, time, Date.UTC(year, month - 1, day, hour, minute, second), fraction, timeZone);
}

/** `Z`, `±hh:mm` or `±hhmm` as `Z` or `±hh:mm` (a zero offset is `Z`); or the problem. */
function normalizedZone(zone: string): string | { problem: string } {
  if (zone === 'Z') {
    return 'Z';
  }
  const hours = digits(zone.slice(1, 3));
  const minutes = digits(zone.slice(zone.length - 2));
  if (minutes > 59) {
    return NOT_AN_OFFSET;
  }
  if (hours * 60 + minutes > 14 * 60) {
    return OFFSET_TOO_LARGE;
  }
  return hours === 0 && minutes === 0 ? 'Z' : `${zone[0]}${pad2(hours)}:${pad2(minutes)}`;
}

/**
 * A wall-clock time without a zone, written with the offset `timeZone` has at that time.
 * A wall time that occurs twice (clocks going back) is the earlier instant, under the offset in
 * force before the change: the first time the clock showed it. One that never occurs (clocks
 * going forward) is a problem: guessing would move the event by an hour.
 * Historical local mean time offsets have seconds, which FHIR offsets cannot carry: such values
 * are written as the same instant in UTC.
 */
function inTimeZone(date: string, time: string, wallClock: number, fraction: string, timeZone: string): ReadResult {
  const offsets = zoneOffsets(timeZone);
  if (offsets === undefined) {
    return { problem: `cannot be read: the time zone "${timeZone}" is not known` };
  }
  const offset = offsets.offsetOfWallClock(wallClock);
  if (offset === undefined) {
    return { problem: `is a local time that does not exist in ${timeZone} (the clocks skip it, as when daylight saving time starts)` };
  }
  if (offset === 0) {
    return { value: `${date}${time}Z` };
  }
  if (offset % 60_000 !== 0) {
    return { value: `${new Date(wallClock - offset).toISOString().slice(0, 19)}${fraction}Z` };
  }
  return { value: date + time + formatOffset(offset) };
}

function formatOffset(offsetMs: number): string {
  const minutes = Math.abs(offsetMs) / 60_000;
  return `${offsetMs < 0 ? '-' : '+'}${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) {
    return 29;
  }
  return DAYS_IN_MONTH[month];
}

/** The value of a string of ASCII digits (the patterns guarantee it). */
function digits(text: string): number {
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    value = value * 10 + text.charCodeAt(i) - 48;
  }
  return value;
}

function pad2(value: number): string {
  return value < 10 ? `0${value}` : `${value}`;
}

const FHIR_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
const FHIR_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * True when a FHIR date/dateTime/instant value lies after `limit` (a date: its whole day is
 * after limit's UTC day; a year or month: its first day is). Throws on anything else: values
 * come from a DateReader, so another one is a bug.
 */
export function isAfter(value: string, limit: Date): boolean {
  const date = FHIR_DATE.exec(value);
  if (date) {
    const firstDay = `${date[1]}-${date[2] ?? '01'}-${date[3] ?? '01'}`;
    return firstDay > utcDay(limit);
  }
  const dateTime = FHIR_DATE_TIME.exec(value);
  if (!dateTime) {
    throw new Error('isAfter: not a FHIR date, dateTime or instant');
  }
  const [, year, month, day, hour, minute, second = '0', fraction = '0', zone] = dateTime;
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (digits(zone.slice(1, 3)) * 60 + digits(zone.slice(4))) * 60_000;
  const wallClock = Date.UTC(digits(year), digits(month) - 1, digits(day), digits(hour), digits(minute), digits(second));
  return wallClock - offset + Number(`0.${fraction}`) * 1000 > limit.getTime();
}

// A cut-off is one Date for a whole import: its day is worked out once.
const utcDays = new WeakMap<Date, string>();

/** The date's UTC day (YYYY-MM-DD), computed once per Date. */
export function utcDay(limit: Date): string {
  let day = utcDays.get(limit);
  if (day === undefined) {
    day = limit.toISOString().slice(0, 10);
    utcDays.set(limit, day);
  }
  return day;
}
