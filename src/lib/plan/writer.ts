import type { MedplumClient } from '@medplum/core';
import { operationOutcomeToString } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { OutgoingRow, PlannedRow } from '../bundles/batch';
import { encodeEntry, unitWrites } from '../bundles/batch';
import type { BatchExecutor, EntryResult } from '../execute/executor';
import { OutOfTimeError } from '../execute/quota';
import { referencesIn } from '../fhir/references';
import { parseConditionalReference, tokenQuery } from '../fhir/search-values';
import type { RowError, RowResult } from '../report';
import { visibleSourceId } from '../tables/identifier-chars';
import type { OnConflict } from '../settings';
import type { ResourceWrite, TableDefinition } from '../tables/types';
import type { Identity } from './lookup';
import { findByIdentity, identityKey } from './lookup';
import { decideWrite, nothingToWrite } from './merge';

/** How often a row whose resource changed under it (412) is planned again before it fails. */
const MAX_PLAN_ROUNDS = 3;

type Action = 'create' | 'update' | 'unchanged';

/** What one write of a row will do. */
interface WritePlan {
  write: ResourceWrite;
  action: Action;
  body: Resource;
  stored?: Resource;
  /** Element paths left alone: changed in Medplum since this table last wrote them. */
  conflicts: string[];
  /** Element paths the write changes. */
  changed: string[];
}

/** A resource this import created, by identity and id. */
interface CreatedResource extends Identity {
  id: string;
}

/** A row after planning: a final result, or the writes to send. */
type RowPlan = { result: RowResult } | { writes: WritePlan[]; outgoing: OutgoingRow; transaction: boolean };

/**
 * Writes batches of rows plan-first (the migration guide's conditional updates, without their
 * cost): the resources the rows write, and those they reference, are looked up by identifier in
 * bulk; then each resource is created (POST), updated by id with If-Match on the version read
 * (PUT), or, when nothing would change, not written at all. References become literal
 * (`Patient/<id>`). A row whose resource changed in Medplum between the plan and the write (412)
 * is planned again.
 */
export class PlanFirstWriter {
  /** References already resolved in this import: `Type|system|value` (case folded) -> `Type/id`. */
  private readonly resolved = new Map<string, string>();
  /** Lookups made (20 quota points each). */
  searches = 0;

  constructor(
    private readonly medplum: MedplumClient,
    private readonly executor: BatchExecutor,
    private readonly table: TableDefinition,
    /** What to do with an element changed in Medplum since the import last wrote it. */
    private readonly onConflict: OnConflict = 'keep'
  ) {}

  /** One result per row; undefined for a row the deadline left unwritten (the next run takes it). */
  async write(rows: readonly PlannedRow[]): Promise<(RowResult | undefined)[]> {
    const results: (RowResult | undefined)[] = new Array(rows.length);
    const created: { index: number; resources: CreatedResource[] }[] = [];
    let pending = rows.map((_, i) => i);
    for (let round = 1; pending.length > 0; round++) {
      // A lookup whose write could not follow before the deadline would be repeated by every run.
      if (!this.executor.hasTimeFor(2)) {
        break;
      }
      const plans = await this.plan(pending.map((i) => rows[i]));
      const sending: { index: number; plan: Extract<RowPlan, { writes: WritePlan[] }> }[] = [];
      pending.forEach((index, k) => {
        const plan = plans[k];
        if ('result' in plan) {
          results[index] = plan.result;
        } else {
          sending.push({ index, plan });
        }
      });
      if (sending.length === 0 || this.executor.outOfTime()) {
        break;
      }
      const executed = await this.executor.execute(sending.map((s) => s.plan.outgoing));
      const replan: number[] = [];
      sending.forEach(({ index, plan }, k) => {
        const outcome = judge(rows[index], plan, executed.results[k]);
        if (outcome === 'replan' && round < MAX_PLAN_ROUNDS) {
          replan.push(index);
        } else if (outcome === 'replan') {
          results[index] = failed(rows[index], 'not written: the resource kept changing in Medplum while it was being written (412 Precondition Failed); import the file again');
        } else {
          results[index] = outcome;
          if (outcome?.state === 'created' || (outcome?.state === 'conflict' && plan.writes[0].action === 'create')) {
            const ids = createdIds(plan, executed.results[k]);
            if (ids.length) {
              created.push({ index, resources: ids });
            }
          }
        }
      });
      pending = replan;
    }
    await this.settleRaces(rows, created, results);
    return results;
  }

  /**
   * Another importer may have created the same new resources at the same time (both plans saw
   * none). Each row's new resources are looked up again; where an identity now has several
   * resources, the row whose first resource has the smallest id keeps its resources and the
   * others are deleted. Every importer that finds the duplicates does the same, so they end with
   * one copy whichever checks first; a row that lost is reported unchanged (its data was written
   * by the other import).
   */
  private async settleRaces(
    rows: readonly PlannedRow[],
    created: readonly { index: number; resources: CreatedResource[] }[],
    results: (RowResult | undefined)[]
  ): Promise<void> {
    if (created.length === 0) {
      return;
    }
    const retrying = <T>(what: string, request: () => Promise<T>): Promise<T> => this.executor.retrying(what, request);
    let found: Awaited<ReturnType<typeof findByIdentity>>;
    try {
      found = await findByIdentity(this.medplum, retrying, created.flatMap((c) => c.resources), () => this.searches++);
    } catch (err) {
      // The rows are written: losing their results to the deadline would make the next run
      // import them again (as unchanged). Only the duplicate check is skipped; a duplicate it
      // would have removed is listed by reconciliation and fails the row's next lookup.
      if (err instanceof OutOfTimeError) {
        this.executor.log(`${err.message}: the check for importers racing on ${created.length} new rows is skipped`);
        return;
      }
      throw err;
    }
    for (const { index, resources } of created) {
      const groups = resources.map((r) => found.get(identityKey(r.type, r.system, r.value)) ?? []);
      if (groups.every((g) => g.length <= 1)) {
        continue;
      }
      const first = groups[0];
      const keeper = [...first].sort((a, b) => ((a.id ?? '') < (b.id ?? '') ? -1 : 1))[0];
      const ours = new Set(resources.map((r) => r.id));
      const weKeep = keeper?.id === resources[0].id;
      // The keeper's row keeps its resources; every other copy of this row's identities goes.
      const doomed = groups.flat().filter((r) => (weKeep ? !ours.has(r.id ?? '') : ours.has(r.id ?? '')));
      for (const resource of doomed) {
        await retrying(`removing a duplicate ${resource.resourceType}`, () =>
          this.medplum.deleteResource(resource.resourceType, resource.id as string).catch((err: unknown) => {
            // Already removed by the other importer.
            if (!/not found|gone|deleted/i.test(String((err as Error)?.message))) {
              throw err;
            }
          })
        );
      }
      if (!weKeep) {
        const row = rows[index];
        results[index] = {
          row: row.row,
          sourceId: row.sourceId,
          state: 'unchanged',
          reason: 'created at the same time by another import; its copy was kept and this one removed',
        };
      }
    }
  }

  /**
   * What writing the rows would do, writing nothing: each row's predicted state, with the
   * element paths it would change (plan mode). The same lookups and decisions as `write`.
   */
  async preview(rows: readonly PlannedRow[]): Promise<RowResult[]> {
    const plans = await this.plan(rows);
    return plans.map((plan, i) => {
      if ('result' in plan) {
        return plan.result;
      }
      const result = written(rows[i], plan.writes);
      const changes = plan.writes.flatMap((p) => p.changed.map((path) => (plan.writes.length > 1 ? `${p.write.label}: ${path}` : path)));
      return { ...result, changes };
    });
  }

  /** Looks up what the rows write and reference, and decides each write. */
  private async plan(rows: readonly PlannedRow[]): Promise<RowPlan[]> {
    const wanted: Identity[] = [];
    // Per row, per write: its conditional references (found once, used to look up and to resolve).
    const references = rows.map((row) => unitWrites(row.unit).map((write) => conditionalReferences(write.resource)));
    rows.forEach((row, i) => {
      unitWrites(row.unit).forEach((write, w) => {
        wanted.push({ type: write.resource.resourceType, system: write.match.system, value: write.match.value });
        for (const ref of references[i][w]) {
          if (!this.resolved.has(identityKey(ref.type, ref.system, ref.value))) {
            wanted.push(ref);
          }
        }
      });
    });
    const found = await findByIdentity(this.medplum, (what, request) => this.executor.retrying(what, request), wanted, () => this.searches++);
    return rows.map((row, i) => this.planRow(row, references[i], found));
  }

  private planRow(row: PlannedRow, references: readonly ConditionalReference[][], found: ReadonlyMap<string, Resource[]>): RowPlan {
    const writes = unitWrites(row.unit);
    // References to other files' resources become literal.
    const resolvedWrites: ResourceWrite[] = [];
    for (const [w, write] of writes.entries()) {
      const resolved = this.resolveReferences(row, write, references[w], found);
      if ('result' in resolved) {
        return resolved;
      }
      resolvedWrites.push(resolved.write);
    }
    // Each resource's stored version, if any.
    const stored: (Resource | undefined)[] = [];
    for (const write of resolvedWrites) {
      const matches = found.get(identityKey(write.resource.resourceType, write.match.system, write.match.value)) ?? [];
      if (matches.length > 1) {
        const id = visibleSourceId(write.match.value);
        return {
          result: failed(
            row,
            `${write.label} ${id} matches ${matches.length} ${write.resource.resourceType} resources in Medplum (identifier ${write.match.system}|${id}): remove the duplicates, then import the file again`,
            this.table.key[0]
          ),
        };
      }
      stored.push(matches[0]);
    }
    // References between this row's own resources: literal to one that exists, urn:uuid to one being created.
    const existing = new Map<string, string>();
    const aliases = new Map<string, string>();
    resolvedWrites.forEach((write, i) => {
      if (write.fullUrl) {
        aliases.set(write.fullUrl, `row:${write.label}`);
        if (stored[i]?.id) {
          existing.set(write.fullUrl, `${write.resource.resourceType}/${stored[i]?.id}`);
          aliases.set(`${write.resource.resourceType}/${stored[i]?.id}`, `row:${write.label}`);
        }
      }
    });
    const plans: WritePlan[] = resolvedWrites.map((write, i) => {
      const linked = existing.size ? { ...write, resource: replaceReferences(write.resource, existing) } : write;
      const { body, conflicts, changed } = decideWrite(stored[i], linked, this.table.name, this.onConflict === 'overwrite', aliases);
      const action: Action = !stored[i] ? 'create' : nothingToWrite(stored[i] as Resource, body, this.table.name) ? 'unchanged' : 'update';
      return { write: linked, action, body, stored: stored[i], conflicts, changed };
    });
    const toSend = plans.filter((p) => p.action !== 'unchanged');
    if (toSend.length === 0) {
      return { result: conflictOr(row, plans, { row: row.row, sourceId: row.sourceId, state: 'unchanged' }) };
    }
    const transaction = row.unit.kind === 'transaction';
    return { writes: plans, transaction, outgoing: outgoing(toSend, transaction) };
  }

  /** The write with its conditional references made literal, or the row's failure. */
  private resolveReferences(
    row: PlannedRow,
    write: ResourceWrite,
    refs: readonly ConditionalReference[],
    found: ReadonlyMap<string, Resource[]>
  ): { write: ResourceWrite } | { result: RowResult } {
    if (refs.length === 0) {
      return { write };
    }
    const literal = new Map<string, string>();
    for (const ref of refs) {
      const key = identityKey(ref.type, ref.system, ref.value);
      let target = this.resolved.get(key);
      if (!target) {
        const matches = found.get(key) ?? [];
        const column = this.table.references?.[ref.type];
        const what = `${column ?? ref.type} ${visibleSourceId(ref.value)}`;
        const identifier = `${ref.system}|${visibleSourceId(ref.value)}`;
        if (matches.length === 0) {
          return {
            result: {
              ...failed(row, `${what} is not in Medplum (no ${ref.type} with identifier ${identifier}); import it first`, column),
              missingParent: ref.type,
            },
          };
        }
        if (matches.length > 1) {
          return {
            result: failed(row, `${what} matches more than one ${ref.type} in Medplum (identifier ${identifier}); resolve the duplicates first`, column),
          };
        }
        target = `${ref.type}/${matches[0].id}`;
        this.resolved.set(key, target);
      }
      literal.set(ref.reference, target);
    }
    return { write: { ...write, resource: replaceReferences(write.resource, literal) } };
  }
}

/** A conditional reference (`Type?identifier=...`) as written, and the identity it names. */
type ConditionalReference = Identity & { reference: string };

/** The conditional references in a resource, decoded. */
function conditionalReferences(resource: Resource): ConditionalReference[] {
  return referencesIn(resource).flatMap(({ reference }) => {
    const parsed = parseConditionalReference(reference);
    return parsed ? [{ reference, ...parsed }] : [];
  });
}

/** A copy of the resource with references replaced (`from` -> `to`). */
function replaceReferences(resource: Resource, replacements: ReadonlyMap<string, string>): Resource {
  return JSON.parse(JSON.stringify(resource), (key, value) =>
    key === 'reference' && typeof value === 'string' && replacements.has(value) ? replacements.get(value) : value
  ) as Resource;
}

/** The entry (and its retry form) for what a row sends. */
function outgoing(plans: readonly WritePlan[], transaction: boolean): OutgoingRow {
  const entries = plans.map((p) => entryOf(p, false));
  const retries = plans.map((p) => entryOf(p, true));
  const wrap = (inner: BundleEntry[]): BundleEntry =>
    transaction ? { request: { method: 'POST', url: '/' }, resource: { resourceType: 'Bundle', type: 'transaction', entry: inner } } : inner[0];
  const entry = encodeEntry(wrap(entries));
  const hasCreate = plans.some((p) => p.action === 'create');
  return { entry, retryEntry: hasCreate ? encodeEntry(wrap(retries)) : undefined, writes: plans.length };
}

function entryOf(plan: WritePlan, retry: boolean): BundleEntry {
  const { write, body, stored } = plan;
  const type = write.resource.resourceType;
  const fullUrl = write.fullUrl ? { fullUrl: write.fullUrl } : {};
  if (plan.action === 'create') {
    // Sent again, a create must not make a second resource if the first attempt landed.
    const ifNoneExist = retry ? { ifNoneExist: `identifier=${tokenQuery(write.match.system, write.match.value)}` } : {};
    return { ...fullUrl, request: { method: 'POST', url: type, ...ifNoneExist }, resource: body };
  }
  return {
    ...fullUrl,
    request: { method: 'PUT', url: `${type}/${stored?.id}`, ifMatch: `W/"${stored?.meta?.versionId}"` },
    resource: body,
  };
}

/** A row's result from its entry's answer, or 'replan' when a resource changed under it. */
function judge(row: PlannedRow, plan: Extract<RowPlan, { writes: WritePlan[] }>, result: EntryResult): RowResult | 'replan' | undefined {
  if (result.kind === 'stopped') {
    return undefined;
  }
  if (result.kind === 'request-failed') {
    return failed(row, `not written: request failed (${result.status || 'network error'}): ${result.message}`);
  }
  const sent = plan.writes.filter((p) => p.action !== 'unchanged');
  const status = result.entry.response?.status ?? '';
  if (!plan.transaction) {
    if (status.startsWith('2')) {
      return written(row, plan.writes);
    }
    return status.startsWith('412') ? 'replan' : failed(row, outcomeText(result.entry));
  }
  const inner = (result.entry.resource as Bundle | undefined)?.entry;
  if (!status.startsWith('2') || !inner) {
    // Refused whole (a project with transactions): nothing of it was written.
    if (status.startsWith('412') || /precondition|412/i.test(outcomeText(result.entry))) {
      return 'replan';
    }
    return failed(row, `${labels(sent)} not written (the transaction was rolled back): ${outcomeText(result.entry)}`);
  }
  // Run entry by entry (a project without transactions): report a pair that half-landed.
  const failedAt = inner.findIndex((e) => !e?.response?.status?.startsWith('2'));
  if (failedAt < 0) {
    return written(row, plan.writes);
  }
  if (inner[failedAt]?.response?.status?.startsWith('412')) {
    return 'replan';
  }
  const landed = sent.filter((_, i) => inner[i]?.response?.status?.startsWith('2')).map((p) => p.write.label);
  const half = landed.length ? `; the ${landed.join(' and ')} was written without it: fix the row and re-run the file to complete it` : '';
  return failed(row, `${sent[failedAt].write.label} not written: ${outcomeText(inner[failedAt])}${half}`);
}

/** The resources a row's answer says were created, with their ids. */
function createdIds(plan: Extract<RowPlan, { writes: WritePlan[] }>, result: EntryResult): CreatedResource[] {
  if (result.kind !== 'response') {
    return [];
  }
  const sent = plan.writes.filter((p) => p.action !== 'unchanged');
  const answers = plan.transaction ? ((result.entry.resource as Bundle | undefined)?.entry ?? []) : [result.entry];
  return sent.flatMap((p, i) => {
    const id = answers[i]?.resource?.id;
    return p.action === 'create' && id
      ? [{ type: p.write.resource.resourceType, system: p.write.match.system, value: p.write.match.value, id }]
      : [];
  });
}

/** The row's state from what its writes did: created when its first resource was, else updated (or in conflict). */
function written(row: PlannedRow, plans: readonly WritePlan[]): RowResult {
  const state = plans[0].action === 'create' ? 'created' : 'updated';
  return conflictOr(row, plans, { row: row.row, sourceId: row.sourceId, state });
}

/**
 * A row some of whose elements were left alone because they changed in Medplum is in conflict,
 * whatever else it wrote: the report names the paths (never values).
 */
function conflictOr(row: PlannedRow, plans: readonly WritePlan[], result: RowResult): RowResult {
  const paths = plans.flatMap((p) => p.conflicts.map((path) => (plans.length > 1 ? `${p.write.label}: ${path}` : path)));
  if (paths.length === 0) {
    return result;
  }
  return {
    row: row.row,
    sourceId: row.sourceId,
    state: 'conflict',
    paths,
    reason: `changed in Medplum since the last import, kept: ${paths.join(', ')} (onConflict: overwrite replaces them)`,
  };
}

function failed(row: PlannedRow, message: string, column?: string): RowResult {
  return {
    row: row.row,
    sourceId: row.sourceId,
    state: 'failed',
    fields: row.fields,
    errors: [{ row: row.row, sourceId: row.sourceId, column, message } satisfies RowError],
  };
}

export function outcomeText(entry: BundleEntry | undefined): string {
  const outcome = (entry?.response?.outcome ?? entry?.resource) as OperationOutcome | undefined;
  const status = entry?.response?.status ?? 'no status';
  if (outcome?.resourceType === 'OperationOutcome') {
    return `${operationOutcomeToString(outcome)} (${status})`;
  }
  return `server answered ${status}`;
}

function labels(plans: readonly WritePlan[]): string {
  return plans.map((p) => p.write.label).join(' and ');
}
