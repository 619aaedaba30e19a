/**
 * The mapping format: what a `*.mapping.json` file holds, as TypeScript types. The JSON Schema
 * (schema/mapping.schema.json) describes the same shape for editors; docs/mappings.md explains it
 * to users. A mapping says how the rows of one kind of CSV file become FHIR resources.
 */

/** A whole mapping file. */
export interface MappingFile {
  /** Editors use it to find the schema; ignored otherwise. */
  $schema?: string;
  /** The table's name (`[a-z][a-z0-9_-]*`), unique in its set: used in reports, `--table`, references. */
  name: string;
  description?: string;
  /**
   * File-name patterns (`conditions*.csv`; `*` any text, `?` one character, case ignored): when
   * given, a file is recognised as this table by its header only if its name matches. For exports
   * where several files share a table's columns (Synthea's careplans.csv has every column of
   * conditions.csv).
   */
  fileNames?: string[];
  /** Every column the mapping reads, by header name (case, spaces and hyphens do not matter). */
  columns: Record<string, ColumnDeclaration>;
  /**
   * The row key: the columns that identify a row in the file. Absent or empty: the whole row.
   * A key repeated later in the file fails the later row (naming the first); a row repeated
   * exactly is skipped.
   */
  key?: string[];
  /** Tables that must be imported first besides those referenced (e.g. one that stores a code map). */
  dependsOn?: string[];
  defaults?: MappingDefaults;
  /** Named code maps, used by values with `map`. */
  codes?: Record<string, CodeMapDeclaration>;
  /** Rows that are skipped (state `skipped`, with the reason) instead of written. */
  skip?: SkipRule[];
  /** What each row writes: one or more resources. */
  resources: ResourceDeclaration[];
}

export interface ColumnDeclaration {
  /** The header must have this column (a file without it does not match the mapping). Default false. */
  required?: boolean;
  description?: string;
}

export interface MappingDefaults {
  /** IANA time zone of date-times written without one (default `UTC`). */
  timeZone?: string;
  /** Formats tried for dates, in order (default `["YYYY-MM-DD"]`). */
  dateFormats?: string[];
  /** Formats tried for date-times, in order (default `["ISO"]`). */
  dateTimeFormats?: string[];
}

/** A code value: a code (string) or a Coding. */
export type CodeValue = string | { system?: string; code?: string; display?: string };

/** Where a code map's entries come from: exactly one of `values`, `file`, `codeSystem`, `conceptMap`. */
export interface CodeMapDeclaration {
  /** Inline: source code -> code or Coding. Source codes are matched case-insensitively. */
  values?: Record<string, CodeValue>;
  /** A dictionary CSV shipped with the mapping (same folder; uploaded with it). */
  file?: string;
  /** `file`: the column holding the source code. */
  code?: string;
  /** `file`: the column holding the value (a code), or Coding members from columns/templates. */
  value?: string | { system?: string; code?: string; display?: string };
  /** A CodeSystem stored in Medplum, by url (templates allowed): code -> Coding(system=url, code, display). */
  codeSystem?: string;
  /** A ConceptMap stored in Medplum, by url: source code -> its first target, as a Coding. */
  conceptMap?: string;
  /** The value for codes not in the map (null: leave the element out); without it an unknown code fails the row. */
  default?: CodeValue | null;
}

/** A condition on a row's cells. */
export type Condition =
  | ColumnTest
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

/** One test of one column: exactly one of the test members. */
export interface ColumnTest {
  column: string;
  /** The cell is not empty. */
  present?: true;
  /** The cell is empty. */
  empty?: true;
  /** The cell equals this text (case-insensitive). */
  equals?: string;
  /** The cell is one of these (case-insensitive). */
  in?: string[];
  /** The whole cell matches this regular expression (case-insensitive). */
  matches?: string;
}

export interface SkipRule {
  if: Condition;
  /** Reported with the skipped row (it must not contain cell values: it is the same for every row). */
  reason: string;
}

export type WriteMode = 'merge' | 'replace';

export interface ResourceDeclaration {
  /** Local name, unique in the mapping (default: the type, lower case): same-row references and messages use it. */
  name?: string;
  /** An R4 resource type. */
  type: string;
  /** The source identity: templates for system and value. Re-imports find the resource by it. */
  identifier: { system: string; value: string };
  /**
   * `merge` (default): an existing resource keeps every element the mapping does not write.
   * `replace`: it becomes exactly what the mapping writes (plus id and meta).
   */
  write?: WriteMode;
  /** The resource is written for a row only when this holds. */
  when?: Condition;
  /** Element path -> value. The identifier is added by itself. */
  elements: Record<string, ValueDeclaration>;
}

/** A template string (shorthand for `{ template }`) or a value object. */
export type ValueDeclaration = string | ValueObject;

/** Exactly one source member (column, template, fixed, reference), plus options. */
export interface ValueObject {
  column?: string;
  template?: string;
  /** A constant: any JSON (an object is taken as it is, e.g. a whole Coding). */
  fixed?: unknown;
  reference?: ReferenceDeclaration;

  /** Only when this holds (else the element is left out). */
  when?: Condition;
  /** An empty value fails the row. */
  required?: boolean;
  /** Look the text up in a code map. */
  map?: string;
  /** Date / date-time formats (override the defaults). */
  formats?: string[];
  /** Time zone of zone-less date-times (overrides the default). */
  timeZone?: string;
  /** `today`: a value after the import's start fails the row. */
  notAfter?: 'today';
  maxLength?: number;
  trueValues?: string[];
  falseValues?: string[];
  /** Quantity: the unit (template), its system (default UCUM) and code (default the unit). */
  unit?: string;
  unitSystem?: string;
  unitCode?: string;
}

/**
 * A reference: to the resource another mapping writes for the row with this key
 * (`mapping` + `key`: cells of this row, in the order of the target's key), to another resource of
 * the same row (`resource` alone), or to any resource by identifier (`type` + `identifier`).
 */
export interface ReferenceDeclaration {
  mapping?: string;
  key?: string[];
  /** With `mapping`: which of its resources (default its first); alone: a resource of this row. */
  resource?: string;
  type?: string;
  identifier?: { system: string; value: string };
}
