import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { ImportSettings } from '../settings';
import type { RowReader } from './row-reader';

/** One column of a source table. */
export interface ColumnSpec {
  name: string;
  required: boolean;
  description: string;
}

/**
 * One resource to write with a conditional PUT keyed on a source identifier:
 * `PUT {resourceType}?identifier={system}|{value}`. The resource must carry that identifier.
 */
export interface ResourceWrite {
  resource: Resource;
  match: { system: string; value: string };
  /** `urn:uuid:` name of this entry, for references from other writes of the same unit. */
  fullUrl?: string;
  /** What this resource is, in messages: "encounter", "note". */
  label: string;
  /**
   * JSON pointer of a list that may make the resource too large for one request (`/concept`): an
   * aggregate table's write that does not fit is then written in parts split along it.
   */
  listPath?: string;
  /**
   * How an existing resource is written: `replace` it with this one, or `merge` this one's
   * `paths` into it, keeping every other element. Default: replace.
   */
  mode?: 'merge' | 'replace';
  /**
   * The element paths this write owns (merge): each set from the resource, or removed from the
   * stored resource when this one lacks it. A path ending at a repeating element without an
   * index owns the whole list.
   */
  paths?: readonly (readonly PathStep[])[];
}

/** One step of an element path: `name[0]` is `{ name: 'name', index: 0, isArray: true }`. */
export interface PathStep {
  name: string;
  /** The array position; undefined on a repeating element means position 0, or the whole list at the end. */
  index?: number;
  isArray: boolean;
}

/**
 * What one row writes. `single`: one resource, sent as one batch entry. `transaction`: resources
 * that must land together (an Encounter and its note), sent as a nested transaction bundle.
 */
export type WriteUnit =
  | { kind: 'single'; write: ResourceWrite }
  | { kind: 'transaction'; writes: ResourceWrite[] }
  /** Nothing to write for this row, for a reason the report gives (a mapping's skip rule). */
  | { kind: 'skip'; reason: string };

/** A unit that writes something. */
export type WritingUnit = Exclude<WriteUnit, { kind: 'skip' }>;

/** What a table's code sees besides the row: settings, and lookups loaded once per file. */
export interface MappingContext<Lookups> {
  settings: ImportSettings;
  lookups: Lookups;
  /** The moment the import started, for checks such as "birth date in the future". */
  now: Date;
  newUuid(): string;
}

interface TableBase<Lookups> {
  /** The table's name, as given in `table` inputs and reports. */
  name: string;
  description: string;
  columns: ColumnSpec[];
  /**
   * The columns that identify a row in the file (a repeat fails the later row); empty: the whole
   * row (an exact repeat is skipped). A one-column key is the row's source id in reports.
   */
  key: readonly string[];
  /** File-name patterns (`conditions*.csv`): when given, only files so named are recognised as this table by their header. */
  fileNames?: readonly string[];
  /** Tables whose data must be in Medplum before this one is imported (scheduling order). */
  dependsOn: string[];
  /**
   * Resource types this table links to by conditional reference, with the column holding the
   * source id: an unresolved reference is reported on that column.
   */
  references?: Readonly<Record<string, string>>;
  /** How each resource type it writes is written to an existing resource (default replace). */
  writeModes?: Readonly<Record<string, 'merge' | 'replace'>>;
  /**
   * Loads what mapping needs from Medplum, once per file. Throws DependencyNotReadyError when a
   * parent table has not been imported yet.
   */
  prepare?(medplum: MedplumClient, settings: ImportSettings, file: string): Promise<Lookups>;
}

/** A table whose rows each become their own resource(s). */
export interface RowTable<Lookups = undefined> extends TableBase<Lookups> {
  kind: 'rows';
  /** Maps one row; problems are recorded on the reader (row, column), never thrown. */
  mapRow(row: RowReader, context: MappingContext<Lookups>): WriteUnit;
}

/** A parsed row of an aggregate table. */
export interface AggregateItem<Item> {
  row: number;
  sourceId: string;
  item: Item;
}

/** The writes for a whole aggregate file, and what each row's state will be if they land. */
export interface AggregatePlan {
  writes: ResourceWrite[];
  /** Row state when the writes succeed; a failed write fails every row. */
  rowStates: Map<number, 'created' | 'updated' | 'unchanged'>;
  /** Optimistic-concurrency guard: versions of existing resources the plan was built from. */
  ifMatch?: Map<string, string>;
}

/**
 * A table whose rows together make a few resources (a code catalog -> CodeSystem + ConceptMap).
 * The whole file is written as one transaction, merged into what Medplum already holds.
 */
export interface AggregateTable<Item = unknown, Lookups = undefined> extends TableBase<Lookups> {
  kind: 'aggregate';
  parseRow(row: RowReader, context: MappingContext<Lookups>): Item;
  plan(medplum: MedplumClient, items: AggregateItem<Item>[], context: MappingContext<Lookups>): Promise<AggregatePlan>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TableDefinition = RowTable<any> | AggregateTable<any, any>;
