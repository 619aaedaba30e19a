import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { unitWrites } from '../bundles/batch';
import type { CsvDocument } from '../csv/document';
import type { ImportProgress } from '../engine/import-csv';
import { DRY_RUN_REASON, importCsv } from '../engine/import-csv';
import type { FileShape } from '../engine/inspect';
import { inspectCsv } from '../engine/inspect';
import type { ExecutorOptions } from '../execute/executor';
import { BatchExecutor } from '../execute/executor';
import { parseConditionalReference, tokenQuery } from '../fhir/search-values';
import type { Identity, Retrying } from '../plan/lookup';
import { findByIdentity, forEachPage, identifiersOf, identityKey } from '../plan/lookup';
import type { RowError, RowResult } from '../report';
import type { ImportSettings } from '../settings';
import { defaultSettings } from '../settings';
import { defaultTables } from '../tables';
import { visibleSourceId } from '../tables/identifier-chars';
import type { RowTable, TableDefinition, WriteUnit } from '../tables/types';
import type { JsonStep } from '../fhir/references';
import { referenceAt, referencesIn } from '../fhir/references';

/**
 * Reconciliation of one file with Medplum, as Medplum's migration guide defines it: every
 * eligible row (imported + rejected + skipped) is accounted for, and the rows that map to
 * resources are compared with Medplum by identifier, not by totals. Nothing is written.
 *
 * Lists name row numbers, source ids, resource types, identifier systems and values, and
 * resource ids: never cell values.
 */
export interface ReconcileReport {
  file: string;
  table: string;
  /** Eligible rows: every data row of the file; `rows = mapped + rejected + skipped`. */
  rows: number;
  /** Rows that map to resources: each of them is expected in Medplum. */
  mapped: number;
  /** Rows the importer rejects (validation or mapping problems): see `rejections`. */
  rejected: number;
  /** Rows the importer skips (a mapping's skip rule, an exact repeat, an empty row). */
  skipped: number;
  /** Mapped rows whose every resource is in Medplum exactly once, with every reference resolving. */
  matched: number;
  /** Resources the rows name (type + identifier) that Medplum does not have. */
  missing: number;
  /** Resources in Medplum under the file's own identifier systems that no row names (listed, never deleted). */
  extra: number;
  /** Identities (type + identifier) held by two or more resources in Medplum. */
  duplicates: number;
  /** References of mapped rows that do not resolve to exactly the one resource they name. */
  unresolved: number;
  missingResources: MissingResource[];
  extraResources: ExtraResource[];
  duplicateResources: DuplicateIdentity[];
  unresolvedReferences: UnresolvedReference[];
  /** Why rows are rejected (the importer's row errors, which never quote cells). */
  rejections: RowError[];
  /** What was compared, per resource type and identifier system. */
  systems: SystemCheck[];
  /** Searches the comparison made (20 quota points each); a mapping's own lookups (stored code maps) come on top. */
  searches: number;
  warnings: string[];
  /** Entries left out of the lists (at `maxListed` each); the counts above stay exact. */
  omitted?: Partial<Record<ReconcileList, number>>;
}

export type ReconcileList = 'missingResources' | 'extraResources' | 'duplicateResources' | 'unresolvedReferences' | 'rejections';

export interface MissingResource {
  /** The first row that names it (`alsoRows`: up to 10 more). */
  row: number;
  sourceId?: string;
  /** The resource type; for a table written as a whole (the condition catalog), the table's entry. */
  type: string;
  /** What the resource is to its mapping ("patient", "note"). */
  label: string;
  system?: string;
  value?: string;
  alsoRows?: number[];
}

export interface ExtraResource {
  type: string;
  id: string;
  system: string;
  value: string;
}

export interface DuplicateIdentity {
  type: string;
  system: string;
  value: string;
  /** The resources holding the identity. */
  ids: string[];
  /** The first row naming it, when a row does. */
  row?: number;
  sourceId?: string;
}

export interface UnresolvedReference {
  row: number;
  sourceId?: string;
  /** The referencing resource's type and element: `Condition`, `subject`. */
  type: string;
  element: string;
  /** The resource the row names. */
  target: { type: string; system: string; value: string };
  /**
   * `not-found`: no resource has the identity; `ambiguous`: several do; `stored-differs`: the
   * stored resource's reference points elsewhere than the one resource the row names.
   */
  problem: 'not-found' | 'ambiguous' | 'stored-differs';
  /** The candidates (ambiguous), or the stored reference (stored-differs). */
  ids?: string[];
}

export interface SystemCheck {
  type: string;
  system: string;
  /** Distinct identities the rows name under it. */
  named: number;
  /** Resources found under it: all of them when `listed`, else those with a named identity. */
  stored: number;
  /** Whether every resource under it was listed (so extras were looked for). */
  listed: boolean;
  note?: string;
}

export interface ReconcileOptions {
  /** Force a table instead of recognising it from the header. */
  table?: string;
  tables?: readonly TableDefinition[];
  settings?: ImportSettings;
  /** The file's structure when the caller already checked it. */
  shape?: FileShape;
  /**
   * Look for extras: list every resource under the file's own identifier systems (one search per
   * 1,000 stored resources). Default true. Off, the rows' identities are looked up instead (one
   * search per 500), e.g. for a delta file, where everything else in Medplum would be "extra".
   */
  extras?: boolean;
  /** Most entries per list (default 200); the counts stay exact. */
  maxListed?: number;
  onProgress?: (progress: ImportProgress) => void;
  /** Operational log lines (counts, row numbers, source ids; never cell values). */
  log?: (line: string) => void;
  executor?: Partial<ExecutorOptions>;
  now?: () => Date;
}

export const DEFAULT_MAX_LISTED = 200;
/** Page size of listing searches: the server's maximum. */
const LIST_PAGE = 1000;
const MAX_ALSO_ROWS = 10;

/** What one mapped row writes, reduced to identities and references (no cell values are kept). */
interface MappedRow {
  row: number;
  sourceId?: string;
  writes: MappedWrite[];
}

interface MappedWrite extends Identity {
  key: string;
  label: string;
  refs: MappedReference[];
}

interface MappedReference {
  steps: JsonStep[];
  element: string;
  /** Another resource by identifier, or (`index`) one of the same row's writes. */
  target: (Identity & { key: string }) | { index: number };
}

/** A stored resource, reduced to what the comparison reads. */
interface StoredEntry {
  id: string;
  /** The identifier value as stored (extras show it). */
  value: string;
  /** The references at the elements the rows' references are at. */
  refs: Map<string, string | undefined>;
}

/**
 * Reconciles one file with Medplum (see ReconcileReport). The file is read, validated and mapped
 * exactly as an import would (importCsv as a dry run, the table's mapping observed row by row);
 * then the identities the rows write and reference are compared with what Medplum holds.
 *
 * Quota: searches only (20 points each): one per 1,000 resources stored under each of the file's
 * own identifier systems, and one per 500 distinct identities the rows reference in other files
 * (or write under systems the file does not own). A table written as a whole (the condition
 * catalog) is compared by planning its import (its rows' codes against the stored catalog).
 */
export async function reconcileFile(medplum: MedplumClient, doc: CsvDocument, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const tables = options.tables ?? defaultTables();
  const settings = options.settings ?? defaultSettings();
  const log = options.log ?? (() => undefined);
  const shape = options.shape ?? (await inspectCsv(doc, tables, options.table));
  const lists = new Lists(options.maxListed ?? DEFAULT_MAX_LISTED);
  const common = { tables, settings, log, executor: options.executor, now: options.now, onProgress: options.onProgress };

  if (shape.table.kind === 'aggregate') {
    return reconcileAggregate(medplum, doc, shape, common, lists);
  }

  // 1. Read and map every row as an import would, keeping what each mapped row writes.
  const pending = new Map<number, MappedRow>();
  const mapped: MappedRow[] = [];
  const namedByOtherRows = new Set<string>();
  const observed = observeRows(shape.table, (row, sourceId, unit) => {
    if (unit.kind !== 'skip') {
      pending.set(row, reduceRow(row, sourceId, unit));
    }
  });
  const { report } = await importCsv(medplum, doc, {
    ...common,
    shape: { ...shape, table: observed },
    dryRun: true,
    onRowResult: (result: RowResult) => {
      const row = pending.get(result.row);
      pending.delete(result.row);
      if (row && result.state === 'skipped' && result.reason === DRY_RUN_REASON) {
        mapped.push(row);
      } else if (result.sourceId) {
        // A rejected or skipped row still names its id: a resource with it is not an extra.
        namedByOtherRows.add(result.sourceId.toLowerCase());
      }
    },
  });
  log(`${doc.name}: ${mapped.length} of ${report.rows} rows map to resources; comparing them with Medplum`);

  // 2. What Medplum holds: the file's own systems listed whole, other identities looked up in bulk.
  const executor = new BatchExecutor(medplum, { log, maxRequestBytes: settings.maxRequestBytes, ...options.executor });
  const retrying = <T>(what: string, request: () => Promise<T>): Promise<T> => executor.retrying(what, request);
  let searches = 0;
  const onSearch = (): void => {
    searches++;
  };

  const pairs = systemPairs(mapped);
  const refSteps = referenceSteps(mapped);
  const stored = new Map<string, StoredEntry[]>();
  const listedKeys = new Map<string, Set<string>>();
  for (const pair of pairs.values()) {
    if (options.extras === false) {
      pair.note = 'not listed (extras not asked for)';
      continue;
    }
    if (!pair.keyed) {
      pair.note = 'not listed: its identifiers are not the rows\' own ids (several rows may write one resource), so other resources under it belong to other files';
      continue;
    }
    const keys = new Set<string>();
    // Page by page: only ids, identifier values and the references compared are kept.
    await listUnderSystem(medplum, retrying, pair.type, pair.system, onSearch, (resources) => {
      for (const resource of resources) {
        for (const value of identifierValues(resource, pair.system)) {
          const key = identityKey(pair.type, pair.system, value);
          addStored(stored, key, toEntry(resource, value, refSteps.get(pair.type)));
          keys.add(key);
        }
      }
    });
    pair.listed = true;
    listedKeys.set(pairKey(pair.type, pair.system), keys);
  }
  const isListed = (type: string, system: string): boolean => listedKeys.has(pairKey(type, system));

  const wanted = new Map<string, Identity>();
  for (const row of mapped) {
    for (const write of row.writes) {
      if (!isListed(write.type, write.system)) {
        wanted.set(write.key, { type: write.type, system: write.system, value: write.value });
      }
      for (const ref of write.refs) {
        if ('key' in ref.target && !isListed(ref.target.type, ref.target.system)) {
          wanted.set(ref.target.key, { type: ref.target.type, system: ref.target.system, value: ref.target.value });
        }
      }
    }
  }
  if (wanted.size) {
    const found = await findByIdentity(medplum, retrying, [...wanted.values()], onSearch);
    for (const [key, resources] of found) {
      const identity = wanted.get(key) as Identity;
      for (const resource of resources) {
        const value = identifierValues(resource, identity.system).find((v) => identityKey(identity.type, identity.system, v) === key) ?? identity.value;
        addStored(stored, key, toEntry(resource, value, refSteps.get(identity.type)));
      }
    }
  }

  // 3. Compare.
  const missing = new Map<string, MissingResource>();
  const duplicates = new Map<string, DuplicateIdentity>();
  let unresolved = 0;
  let matched = 0;
  const namedKeys = new Set<string>();
  for (const row of mapped) {
    let clean = true;
    const entries = row.writes.map((w) => stored.get(w.key) ?? []);
    row.writes.forEach((write, i) => {
      namedKeys.add(write.key);
      const found = entries[i];
      if (found.length === 0) {
        clean = false;
        const known = missing.get(write.key);
        if (known) {
          if ((known.alsoRows ??= []).length < MAX_ALSO_ROWS) {
            known.alsoRows.push(row.row);
          }
        } else {
          missing.set(write.key, {
            row: row.row,
            ...sourceIdOf(row),
            type: write.type,
            label: write.label,
            system: write.system,
            value: visibleSourceId(write.value),
          });
        }
      } else if (found.length > 1) {
        clean = false;
        if (!duplicates.has(write.key)) {
          duplicates.set(write.key, { ...duplicateOf(write, found), row: row.row, ...sourceIdOf(row) });
        }
      }
      for (const ref of write.refs) {
        const problem = checkReference(row, write, found, ref, entries, stored);
        if (problem) {
          clean = false;
          unresolved++;
          lists.add('unresolvedReferences', problem);
        }
      }
    });
    if (clean) {
      matched++;
    }
  }

  let extra = 0;
  for (const [pair, keys] of listedKeys) {
    const [type, system] = splitPairKey(pair);
    for (const key of keys) {
      const found = stored.get(key) ?? [];
      if (found.length > 1 && !duplicates.has(key)) {
        duplicates.set(key, duplicateOf({ type, system, value: found[0].value }, found));
      }
      if (namedKeys.has(key) || namedByOtherRows.has(found[0]?.value.toLowerCase() ?? '')) {
        continue;
      }
      for (const entry of found) {
        extra++;
        lists.add('extraResources', { type, id: entry.id, system, value: visibleSourceId(entry.value) });
      }
    }
  }

  for (const entry of [...missing.values()].sort((a, b) => a.row - b.row)) {
    lists.add('missingResources', entry);
  }
  for (const entry of [...duplicates.values()].sort(byRowThenValue)) {
    lists.add('duplicateResources', entry);
  }
  report.errors.forEach((e) => lists.add('rejections', e));

  const rejected = report.failed;
  const result: ReconcileReport = {
    file: doc.name,
    table: shape.table.name,
    rows: report.rows,
    mapped: mapped.length,
    rejected,
    skipped: report.rows - mapped.length - rejected,
    matched,
    missing: missing.size,
    extra,
    duplicates: duplicates.size,
    unresolved,
    ...lists.build(),
    systems: [...pairs.values()].map((p) => ({
      type: p.type,
      system: p.system,
      named: p.named.size,
      stored: countStored(stored, p.listed ? listedKeys.get(pairKey(p.type, p.system)) : p.named),
      listed: p.listed,
      ...(p.note ? { note: p.note } : {}),
    })),
    searches,
    warnings: [...report.warnings],
  };
  // The import's own report capped its errors: the rejections list says how many it left out.
  const omittedErrors = report.omitted?.errors ?? 0;
  if (omittedErrors) {
    result.omitted = { ...result.omitted, rejections: (result.omitted?.rejections ?? 0) + omittedErrors };
  }
  if (mapped.length && pairs.size === 0) {
    result.warnings.push('the rows write no resource with an identifier: nothing to compare');
  }
  log(
    `${doc.name}: ${matched} of ${mapped.length} mapped rows match; missing ${result.missing}, extra ${extra}, duplicates ${result.duplicates}, unresolved ${unresolved} (${searches} searches)`
  );
  return result;
}

/** True when the reconciliation found nothing to fix (rejected and skipped rows are accounted for, not findings). */
export function isReconciled(report: ReconcileReport): boolean {
  return report.missing + report.extra + report.duplicates + report.unresolved === 0;
}

interface CommonOptions {
  tables: readonly TableDefinition[];
  settings: ImportSettings;
  log: (line: string) => void;
  executor?: Partial<ExecutorOptions>;
  now?: () => Date;
  onProgress?: (progress: ImportProgress) => void;
}

/**
 * A table written as a whole (the condition catalog): its import is planned, which compares each
 * row with the stored resources; a row whose entry the plan would create is missing.
 */
async function reconcileAggregate(
  medplum: MedplumClient,
  doc: CsvDocument,
  shape: FileShape,
  common: CommonOptions,
  lists: Lists
): Promise<ReconcileReport> {
  let matched = 0;
  let missing = 0;
  let differs = 0;
  const { report } = await importCsv(medplum, doc, {
    ...common,
    shape,
    plan: true,
    onRowResult: (result) => {
      if (result.state === 'created') {
        missing++;
        lists.add('missingResources', {
          row: result.row,
          ...(result.sourceId ? { sourceId: result.sourceId } : {}),
          type: shape.table.name,
          label: `${shape.table.name} entry`,
        });
      } else if (result.state === 'unchanged' || result.state === 'updated' || result.state === 'conflict') {
        matched++;
        if (result.state !== 'unchanged') {
          differs++;
        }
      }
    },
  });
  report.errors.forEach((e) => lists.add('rejections', e));
  const warnings = [...report.warnings, `table ${shape.table.name} is written as a whole: its rows are compared with the stored ${shape.table.name} by the table's own lookups (not counted in searches); extras and duplicates are not looked for`];
  if (differs) {
    warnings.push(`${differs} rows are in Medplum with other values than the file's (an import would update them)`);
  }
  return {
    file: doc.name,
    table: shape.table.name,
    rows: report.rows,
    mapped: matched + missing,
    rejected: report.failed,
    skipped: report.skipped,
    matched,
    missing,
    extra: 0,
    duplicates: 0,
    unresolved: 0,
    ...lists.build(),
    systems: [],
    searches: 0,
    warnings,
  };
}

/** The table, with each row's mapped writes passed to `observe` (the engine itself is unchanged). */
function observeRows(table: TableDefinition, observe: (row: number, sourceId: string | undefined, unit: WriteUnit) => void): TableDefinition {
  if (table.kind !== 'rows') {
    return table;
  }
  // A copy that inherits everything from the table (a class instance keeps its methods) but maps through `observe`.
  const observed = Object.create(table) as RowTable<unknown>;
  observed.mapRow = (reader, context) => {
    const unit = table.mapRow(reader, context);
    observe(reader.row, reader.sourceId, unit);
    return unit;
  };
  return observed;
}

function reduceRow(row: number, sourceId: string | undefined, unit: Exclude<WriteUnit, { kind: 'skip' }>): MappedRow {
  const writes = unitWrites(unit);
  const byFullUrl = new Map<string, number>();
  writes.forEach((w, i) => {
    if (w.fullUrl) {
      byFullUrl.set(w.fullUrl, i);
    }
  });
  return {
    row,
    sourceId,
    writes: writes.map((write) => {
      const type = write.resource.resourceType;
      const refs: MappedReference[] = [];
      for (const found of referencesIn(write.resource)) {
        const index = byFullUrl.get(found.reference);
        if (index !== undefined) {
          refs.push({ steps: found.steps, element: found.element, target: { index } });
          continue;
        }
        const conditional = parseConditionalReference(found.reference);
        if (conditional) {
          refs.push({
            steps: found.steps,
            element: found.element,
            target: { ...conditional, key: identityKey(conditional.type, conditional.system, conditional.value) },
          });
        }
      }
      return {
        type,
        system: write.match.system,
        value: write.match.value,
        key: identityKey(type, write.match.system, write.match.value),
        label: write.label,
        refs,
      };
    }),
  };
}

interface Pair {
  type: string;
  system: string;
  /** Every write under it is identified by its row's own id (its key). */
  keyed: boolean;
  named: Set<string>;
  listed: boolean;
  note?: string;
}

function pairKey(type: string, system: string): string {
  return `${type}|${system}`;
}

function splitPairKey(key: string): [string, string] {
  const bar = key.indexOf('|');
  return [key.slice(0, bar), key.slice(bar + 1)];
}

/** The (type, identifier system) pairs the rows write, and whether each holds the rows' own ids. */
function systemPairs(rows: readonly MappedRow[]): Map<string, Pair> {
  const pairs = new Map<string, Pair>();
  for (const row of rows) {
    for (const write of row.writes) {
      const key = pairKey(write.type, write.system);
      let pair = pairs.get(key);
      if (!pair) {
        pair = { type: write.type, system: write.system, keyed: true, named: new Set(), listed: false };
        pairs.set(key, pair);
      }
      pair.named.add(write.key);
      if (!row.sourceId || write.value.toLowerCase() !== row.sourceId.toLowerCase()) {
        pair.keyed = false;
      }
    }
  }
  return pairs;
}

/** Per resource type, the Reference elements the rows' references are at (stored resources are read there). */
function referenceSteps(rows: readonly MappedRow[]): Map<string, Map<string, JsonStep[]>> {
  const byType = new Map<string, Map<string, JsonStep[]>>();
  for (const row of rows) {
    for (const write of row.writes) {
      for (const ref of write.refs) {
        let elements = byType.get(write.type);
        if (!elements) {
          elements = new Map();
          byType.set(write.type, elements);
        }
        elements.set(ref.element, ref.steps);
      }
    }
  }
  return byType;
}

function toEntry(resource: Resource, value: string, steps: ReadonlyMap<string, JsonStep[]> | undefined): StoredEntry {
  const refs = new Map<string, string | undefined>();
  for (const [element, path] of steps ?? []) {
    refs.set(element, referenceAt(resource, path));
  }
  return { id: resource.id as string, value, refs };
}

function addStored(stored: Map<string, StoredEntry[]>, key: string, entry: StoredEntry): void {
  const list = stored.get(key);
  if (!list) {
    stored.set(key, [entry]);
  } else if (!list.some((e) => e.id === entry.id)) {
    list.push(entry);
  }
}

function countStored(stored: ReadonlyMap<string, StoredEntry[]>, keys: Iterable<string> | undefined): number {
  const ids = new Set<string>();
  for (const key of keys ?? []) {
    for (const entry of stored.get(key) ?? []) {
      ids.add(entry.id);
    }
  }
  return ids.size;
}

function identifierValues(resource: Resource, system: string): string[] {
  return identifiersOf(resource).flatMap((i) => (i.system === system && i.value ? [i.value] : []));
}

/**
 * Every resource of a type with an identifier in the system (`identifier=<system>|`), page by
 * page (1,000 a page, 20 quota points each), sorted by `_lastUpdated` so that the server pages
 * with cursors past its 10,000 offset limit.
 */
async function listUnderSystem(
  medplum: MedplumClient,
  retrying: Retrying,
  type: string,
  system: string,
  onSearch: () => void,
  onPage: (resources: Resource[]) => void
): Promise<void> {
  const url = `${medplum.fhirUrl(type).toString()}?identifier=${tokenQuery(system, '')}&_count=${LIST_PAGE}&_sort=_lastUpdated`;
  await forEachPage(
    medplum,
    retrying,
    `listing ${type} resources under ${system}`,
    () => medplum.get(url, { cache: 'no-cache', maxRetries: 0 }),
    onSearch,
    (page) => onPage((page.entry ?? []).flatMap((e) => (e.resource && e.search?.mode !== 'include' ? [e.resource] : [])))
  );
}

/** A reference of a mapped row that does not resolve to exactly the one resource it names, if it does not. */
function checkReference(
  row: MappedRow,
  write: MappedWrite,
  found: readonly StoredEntry[],
  ref: MappedReference,
  entries: readonly (readonly StoredEntry[])[],
  stored: ReadonlyMap<string, StoredEntry[]>
): UnresolvedReference | undefined {
  let target: { type: string; system: string; value: string };
  let candidates: readonly StoredEntry[];
  if ('index' in ref.target) {
    // A resource of the same row: only a stored resource can point wrong (a missing or
    // duplicated one is listed as such).
    if (found.length !== 1) {
      return undefined;
    }
    const other = row.writes[ref.target.index];
    target = { type: other.type, system: other.system, value: visibleSourceId(other.value) };
    candidates = entries[ref.target.index];
  } else {
    target = { type: ref.target.type, system: ref.target.system, value: visibleSourceId(ref.target.value) };
    candidates = stored.get(ref.target.key) ?? [];
  }
  const base = { row: row.row, ...sourceIdOf(row), type: write.type, element: ref.element, target };
  if (candidates.length === 0) {
    return { ...base, problem: 'not-found' };
  }
  if (candidates.length > 1) {
    return { ...base, problem: 'ambiguous', ids: candidates.map((c) => `${target.type}/${c.id}`).sort() };
  }
  if (found.length === 1) {
    const actual = found[0].refs.get(ref.element);
    const expected = `${target.type}/${candidates[0].id}`;
    if (actual !== expected && !actual?.endsWith(`/${expected}`)) {
      return { ...base, problem: 'stored-differs', ...(actual ? { ids: [actual] } : {}) };
    }
  }
  return undefined;
}

function duplicateOf(identity: { type: string; system: string; value: string }, found: readonly StoredEntry[]): DuplicateIdentity {
  return { type: identity.type, system: identity.system, value: visibleSourceId(identity.value), ids: found.map((e) => e.id).sort() };
}

function sourceIdOf(row: MappedRow): { sourceId?: string } {
  return row.sourceId ? { sourceId: row.sourceId } : {};
}

function byRowThenValue(a: DuplicateIdentity, b: DuplicateIdentity): number {
  return (a.row ?? Number.MAX_SAFE_INTEGER) - (b.row ?? Number.MAX_SAFE_INTEGER) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
}

/** The report's lists, each capped, with what was left out counted. */
class Lists {
  private readonly lists = {
    missingResources: [] as MissingResource[],
    extraResources: [] as ExtraResource[],
    duplicateResources: [] as DuplicateIdentity[],
    unresolvedReferences: [] as UnresolvedReference[],
    rejections: [] as RowError[],
  };
  private readonly omitted: Partial<Record<ReconcileList, number>> = {};

  constructor(private readonly max: number) {}

  add<K extends ReconcileList>(list: K, entry: ReconcileReport[K][number]): void {
    const target = this.lists[list] as ReconcileReport[K][number][];
    if (target.length < this.max) {
      target.push(entry);
    } else {
      this.omitted[list] = (this.omitted[list] ?? 0) + 1;
    }
  }

  build(): Pick<ReconcileReport, ReconcileList | 'omitted'> {
    return { ...this.lists, ...(Object.keys(this.omitted).length ? { omitted: { ...this.omitted } } : {}) };
  }
}
