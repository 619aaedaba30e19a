import type { ImportSettings } from '../settings';
import { refusedCharacters, visibleSourceId } from '../tables/identifier-chars';
import type { RowReader } from '../tables/row-reader';
import type { DateReader } from '../values/date-time';
import { compileDateFormats, isAfter, isTimeZone } from '../values/date-time';
import type { IntegerKind } from '../values/numbers';
import { DEFAULT_FALSE_VALUES, DEFAULT_TRUE_VALUES, readBoolean, readDecimal, readInteger } from '../values/numbers';
import type { CodeMap, Coding, MappedCode } from './codes';
import { checkCodeValue } from './codes';
import type { RowTest } from './conditions';
import type { ElementInfo } from './fhir-elements';
import { valueSetCodes } from './fhir-elements';
import type { FileProblems } from './problems';
import { pointer } from './problems';
import type { ValueObject } from './format';
import type { Template, TemplateCells } from './templates';

/** What producing a value for one row can read. */
export interface RowContext {
  reader: RowReader;
  cells: TemplateCells;
  /** Code maps by name (stored ones loaded for this file). */
  codeMaps: ReadonlyMap<string, CodeMap>;
  /** `notAfter: today` compares with this. */
  now: Date;
  settings: ImportSettings;
  /** `urn:uuid:` names of this row's resources that are written (same-row references). */
  fullUrls: ReadonlyMap<string, string>;
}

/** Produces an element's value for a row; undefined leaves the element out. Problems go to the reader. */
export type Produce = (row: RowContext) => unknown;

/** Where a value's text comes from, as compiled by the caller. */
export type TextSource = { template: Template; what: string };

/** A value declaration's options (see ValueObject), with the unit templates compiled. */
export type ValueOptions = Pick<
  ValueObject,
  'required' | 'map' | 'formats' | 'timeZone' | 'notAfter' | 'maxLength' | 'trueValues' | 'falseValues' | 'unitSystem'
> & { unit?: Template; unitCode?: Template };

const STRING_TYPES = new Set(['string', 'markdown', 'id', 'uri', 'url', 'canonical', 'oid', 'uuid', 'code']);
const INTEGER_TYPES = new Set<string>(['integer', 'positiveInt', 'unsignedInt']);
const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);
export const QUANTITY_TYPES = new Set(['Quantity', 'Age', 'Count', 'Distance', 'Duration', 'SimpleQuantity']);
/** Codes named in messages only when short and printable (codes are not patient data, long free text may be). */
const MAX_NAMED_CODE_LENGTH = 40;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** hh:mm, or hh:mm:ss with an optional fraction; FHIR wants the seconds, so hh:mm gets :00. */
const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?$/;
const UCUM = 'http://unitsofmeasure.org';

/** Compile-time inputs shared by every value of a mapping. */
export interface ValueCompileContext {
  problems: FileProblems;
  /** Inline and dictionary maps are known when compiling; stored ones only by name. */
  codeMaps: ReadonlyMap<string, CodeMap | 'stored'>;
  defaults: { timeZone: string; dateFormats: string[]; dateTimeFormats: string[] };
}

/**
 * Compiles how a text (a cell or a template) becomes the value of an element of type
 * `info.type`, with the value's options. Returns undefined (with problems added) when the
 * combination cannot work, so that no row is read with a broken mapping.
 */
export function compileTextValue(
  info: ElementInfo,
  source: TextSource,
  options: ValueOptions,
  when: RowTest | undefined,
  at: string,
  ctx: ValueCompileContext
): Produce | undefined {
  const { problems } = ctx;
  const type = info.type;
  const convert = compileConversion(info, source.what, options, at, ctx);
  if (!convert) {
    return undefined;
  }
  const mapName = options.map;
  if (mapName !== undefined) {
    const known = ctx.codeMaps.get(mapName);
    if (!known) {
      problems.add(pointer(at, 'map'), `no code map named '${mapName}' in "codes"`);
      return undefined;
    }
    if (known !== 'stored' && !checkMappedValues(known, info, at, ctx)) {
      return undefined;
    }
  } else if (type === 'Coding') {
    problems.add(at, 'a Coding comes from a code map ("map") or a "fixed" value; or write its parts (…system, …code, …display)');
    return undefined;
  }
  const { template, what } = source;
  const required = options.required === true;
  const column = template.columns[0];
  return (row) => {
    if (when && !when(row.cells.cell)) {
      return undefined;
    }
    const text = template.render(row.cells);
    if (!text) {
      if (required) {
        row.reader.problem(column, `${what} is required`);
      }
      return undefined;
    }
    if (mapName === undefined) {
      return convert(text, row, column);
    }
    const map = row.codeMaps.get(mapName) as CodeMap;
    const mapped = map.lookup(text);
    if (mapped === undefined) {
      row.reader.problem(column, unknownCodeMessage(what, text, map));
      return undefined;
    }
    if (mapped === null) {
      return undefined;
    }
    return fromMapped(mapped, type, convert, row, column);
  };
}

function unknownCodeMessage(what: string, code: string, map: CodeMap): string {
  const named = code.length <= MAX_NAMED_CODE_LENGTH && !refusedCharacters(code.replace(/ /g, '')) ? ` '${code}'` : '';
  const list = map.listable ? `: one of ${map.listable.join(', ')}` : ` (code map '${map.name}')`;
  return `${what}${named} is not a known code${list}`;
}

/** A mapped value as the element's type wants it. */
function fromMapped(mapped: MappedCode, type: string, convert: Convert, row: RowContext, column: string | undefined): unknown {
  if (type === 'Coding') {
    return typeof mapped === 'string' ? { code: mapped } : { ...mapped };
  }
  if (type === 'CodeableConcept') {
    const coding = typeof mapped === 'string' ? { code: mapped } : { ...mapped };
    return coding.display ? { coding: [coding], text: coding.display } : { coding: [coding] };
  }
  if (typeof mapped === 'string') {
    return convert(mapped, row, column);
  }
  // A Coding into a text element: a code element takes its code, others its display.
  const text = type === 'code' ? mapped.code : (mapped.display ?? mapped.code);
  return text === undefined ? undefined : convert(text, row, column);
}

/** Code-map values must suit the element, and a required value set, when they are known at load. */
function checkMappedValues(map: CodeMap, info: ElementInfo, at: string, ctx: ValueCompileContext): boolean {
  const allowed = info.requiredValueSet ? valueSetCodes(info.requiredValueSet) : undefined;
  if (!allowed) {
    return true;
  }
  const bad = map.values
    .map((v) => (typeof v === 'string' ? v : v.code))
    .filter((code): code is string => code !== undefined && !allowed.has(code));
  if (bad.length) {
    ctx.problems.add(
      pointer(at, 'map'),
      `code map '${map.name}' gives ${[...new Set(bad)].slice(0, 5).map((c) => `'${c}'`).join(', ')}, not in the required value set ${info.requiredValueSet} (${[...allowed].slice(0, 12).join(', ')})`
    );
    return false;
  }
  return true;
}

/** Text to value; `column` is where problems are reported. */
type Convert = (text: string, row: RowContext, column: string | undefined) => unknown;

/** How a text becomes a value of the element's type (see docs/mappings.md, "Values"). */
function compileConversion(info: ElementInfo, what: string, options: ValueOptions, at: string, ctx: ValueCompileContext): Convert | undefined {
  const { problems } = ctx;
  const type = info.type;
  const misplaced = (option: keyof ValueOptions, applies: string): boolean => {
    if (options[option] !== undefined) {
      problems.add(pointer(at, option), `"${option}" applies to ${applies}, not to ${type}`);
      return true;
    }
    return false;
  };
  const stringy = STRING_TYPES.has(type);
  const dated = DATE_TYPES.has(type);
  const quantity = QUANTITY_TYPES.has(type);
  let bad = false;
  if (!stringy) {
    bad = misplaced('maxLength', 'text elements') || bad;
  }
  if (type !== 'boolean') {
    bad = misplaced('trueValues', 'boolean elements') || misplaced('falseValues', 'boolean elements') || bad;
  }
  if (!dated) {
    bad = misplaced('formats', 'date and date-time elements') || misplaced('timeZone', 'date-time elements') || misplaced('notAfter', 'dates') || bad;
  }
  if (!quantity) {
    bad = misplaced('unit', 'Quantity elements') || misplaced('unitSystem', 'Quantity elements') || misplaced('unitCode', 'Quantity elements') || bad;
  }
  if (bad) {
    return undefined;
  }

  if (stringy) {
    return stringConversion(info, what, options);
  }
  if (type === 'boolean') {
    const trueValues = options.trueValues ?? DEFAULT_TRUE_VALUES;
    const falseValues = options.falseValues ?? DEFAULT_FALSE_VALUES;
    return checked(what, (text) => readBoolean(text, trueValues, falseValues));
  }
  if (INTEGER_TYPES.has(type)) {
    return checked(what, (text) => readInteger(text, type as IntegerKind));
  }
  if (type === 'decimal') {
    return checked(what, readDecimal);
  }
  if (type === 'time') {
    return (text, row, column) => {
      if (TIME_OF_DAY.test(text)) {
        return text.length === 5 ? `${text}:00` : text;
      }
      row.reader.problem(column, `${what} must be a time of day such as 14:30 or 14:30:00`);
      return undefined;
    };
  }
  if (dated) {
    return dateConversion(type as 'date' | 'dateTime' | 'instant', what, options, at, ctx);
  }
  if (quantity) {
    return quantityConversion(what, options);
  }
  if (type === 'CodeableConcept') {
    // Without a map, the text is the concept's text.
    return (text: string) => ({ text });
  }
  if (type === 'Coding') {
    return (text: string) => ({ code: text });
  }
  if (type === 'Reference') {
    problems.add(at, 'a Reference takes a "reference" value (another mapping\'s row, a resource of this row, or an identifier)');
    return undefined;
  }
  problems.add(at, `a ${type} is written part by part (e.g. ${info.path}.<part>) or as a "fixed" value`);
  return undefined;
}

function checked(what: string, read: (text: string) => { value: unknown } | { problem: string }): Convert {
  return (text, row, column) => {
    const result = read(text);
    if ('problem' in result) {
      row.reader.problem(column, `${what} ${result.problem}`);
      return undefined;
    }
    return result.value;
  };
}

function stringConversion(info: ElementInfo, what: string, options: ValueOptions): Convert {
  const maxLength = options.maxLength;
  const allowed = info.type === 'code' && info.requiredValueSet ? valueSetCodes(info.requiredValueSet) : undefined;
  const type = info.type;
  return (text, row, column) => {
    if (maxLength !== undefined && text.length > maxLength) {
      row.reader.problem(column, `${what} is longer than ${maxLength} characters`);
      return undefined;
    }
    if (allowed && !allowed.has(text)) {
      const named = text.length <= MAX_NAMED_CODE_LENGTH && !refusedCharacters(text) ? ` '${visibleSourceId(text)}'` : '';
      const list = allowed.size <= 12 ? `: one of ${[...allowed].join(', ')}` : '';
      row.reader.problem(column, `${what}${named} is not a code of ${info.requiredValueSet}${list}`);
      return undefined;
    }
    if (type === 'id' && !FHIR_ID.test(text)) {
      row.reader.problem(column, `${what} must be a FHIR id (letters, digits, '-' and '.', at most 64)`);
      return undefined;
    }
    if ((type === 'uri' || type === 'url' || type === 'canonical' || type === 'oid' || type === 'uuid') && /\s/.test(text)) {
      row.reader.problem(column, `${what} must be a URI (no spaces)`);
      return undefined;
    }
    return text;
  };
}

function dateConversion(
  kind: 'date' | 'dateTime' | 'instant',
  what: string,
  options: ValueOptions,
  at: string,
  ctx: ValueCompileContext
): Convert | undefined {
  const formats = options.formats ?? (kind === 'date' ? ctx.defaults.dateFormats : ctx.defaults.dateTimeFormats);
  const reader = compileDateFormats(kind, formats);
  if ('error' in reader) {
    ctx.problems.add(pointer(at, options.formats ? 'formats' : ''), reader.error);
    return undefined;
  }
  const timeZone = options.timeZone ?? ctx.defaults.timeZone;
  if (!isTimeZone(timeZone)) {
    ctx.problems.add(pointer(at, 'timeZone'), `unknown time zone '${timeZone}' (an IANA name such as Europe/Berlin or UTC)`);
    return undefined;
  }
  if (options.notAfter !== undefined && options.notAfter !== 'today') {
    ctx.problems.add(pointer(at, 'notAfter'), '"notAfter" takes "today"');
    return undefined;
  }
  const notAfter = options.notAfter === 'today';
  return (text, row, column) => readDated(reader, text, timeZone, notAfter, what, row, column);
}

function readDated(
  reader: DateReader,
  text: string,
  timeZone: string,
  notAfter: boolean,
  what: string,
  row: RowContext,
  column: string | undefined
): unknown {
  const result = reader.read(text, timeZone);
  if ('problem' in result) {
    row.reader.problem(column, `${what} ${result.problem}`);
    return undefined;
  }
  if (notAfter && isAfter(result.value, row.now)) {
    row.reader.problem(column, `${what} is in the future`);
    return undefined;
  }
  return result.value;
}

function quantityConversion(what: string, options: ValueOptions): Convert {
  const { unit, unitCode } = options;
  const system = options.unitSystem ?? UCUM;
  return (text, row, column) => {
    const number = readDecimal(text);
    if ('problem' in number) {
      row.reader.problem(column, `${what} ${number.problem}`);
      return undefined;
    }
    const unitText = unit?.render(row.cells);
    const code = unitCode ? unitCode.render(row.cells) : unitText;
    return {
      value: number.value,
      ...(unitText ? { unit: unitText } : {}),
      ...(code ? { system, code } : {}),
    };
  };
}

/** A `fixed` value, checked against the element's type where it is a primitive or a code. */
export function compileFixedValue(info: ElementInfo, value: unknown, when: RowTest | undefined, at: string, ctx: ValueCompileContext): Produce | undefined {
  const { problems } = ctx;
  const type = info.type;
  const fail = (message: string): undefined => {
    problems.add(pointer(at, 'fixed'), message);
    return undefined;
  };
  if (value === null || value === undefined) {
    return fail('a fixed value must not be null');
  }
  if (STRING_TYPES.has(type) || DATE_TYPES.has(type) || type === 'time') {
    if (typeof value !== 'string' || !value) {
      return fail(`${info.path} is a ${type}: the fixed value must be a non-empty text`);
    }
    const allowed = type === 'code' && info.requiredValueSet ? valueSetCodes(info.requiredValueSet) : undefined;
    if (allowed && !allowed.has(value)) {
      return fail(`'${value}' is not in the required value set ${info.requiredValueSet} (${[...allowed].slice(0, 12).join(', ')})`);
    }
  } else if (type === 'boolean' && typeof value !== 'boolean') {
    return fail(`${info.path} is a boolean: the fixed value must be true or false`);
  } else if ((INTEGER_TYPES.has(type) || type === 'decimal') && typeof value !== 'number') {
    return fail(`${info.path} is a ${type}: the fixed value must be a number`);
  } else if (type === 'Coding' && checkCodeValue(value, pointer(at, 'fixed'), problems) === undefined) {
    return undefined;
  } else if (!STRING_TYPES.has(type) && typeof value !== 'object' && !['boolean', 'decimal'].includes(type) && !INTEGER_TYPES.has(type)) {
    return fail(`${info.path} is a ${type}: the fixed value must be an object`);
  }
  const text = JSON.stringify(value);
  const codingSystems = collectSystems(value);
  for (const system of codingSystems) {
    if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(system)) {
      return fail('code systems must be absolute URIs (http://..., urn:...)');
    }
  }
  // Each row gets its own copy: resources are changed after they are built (merges, references).
  return typeof value === 'object'
    ? (row) => (when && !when(row.cells.cell) ? undefined : JSON.parse(text))
    : (row) => (when && !when(row.cells.cell) ? undefined : value);
}

function collectSystems(value: unknown): string[] {
  if (Array.isArray(value)) {
    return value.flatMap(collectSystems);
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => (k === 'system' && typeof v === 'string' ? [v] : collectSystems(v)));
  }
  return [];
}

export type { Coding };
