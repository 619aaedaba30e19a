import { deepEquals } from '@medplum/core';
import type { Identifier, Resource } from '@medplum/fhirtypes';
import { compact, setAt } from '../mapping/body';
import type { PathStep, ResourceWrite } from '../tables/types';
import { OWNERSHIP_SYSTEM, ownershipTag, pathHash, pathText, valueHash, withOwnershipTag, writtenBy } from './ownership';

type Json = Record<string, unknown>;

/** What to send for a write, and the element paths left alone because they changed in Medplum. */
export interface WriteDecision {
  body: Resource;
  /** Paths (as written in the mapping) a clinician changed since this table last wrote them: kept as they are. */
  conflicts: string[];
  /** What the write changes: the mapping's paths (merge), or top-level elements (create, replace). */
  changed: string[];
}

/**
 * What to send for a write, given what Medplum holds (undefined: nothing yet). `replace`: the
 * mapped resource itself. `merge`: the stored resource with the write's own element paths set
 * from the mapped one, or removed where the mapped one has nothing; every other element is kept
 * (what clinicians or other files added). A path whose stored value is neither what this table
 * last wrote (its ownership tag) nor what it writes now was changed in Medplum: a conflict, left
 * as it is unless `overwrite`. The source identifier is always kept or added; the ownership tag
 * records what the table wrote.
 */
export function decideWrite(
  stored: Resource | undefined,
  write: ResourceWrite,
  table: string,
  overwrite: boolean,
  /** References to this row's other resources (urn:uuid or Type/id) -> a stable name, for the ownership record. */
  aliases?: ReadonlyMap<string, string>
): WriteDecision {
  const mapped = write.resource as unknown as Json;
  const paths = write.mode === 'merge' ? (write.paths ?? []) : [];
  if (!stored || write.mode !== 'merge' || !write.paths) {
    const body = clone(mapped) as Json;
    if (stored) {
      body.id = stored.id;
    }
    if (paths.length) {
      const values = new Map(paths.map((steps): [string, string] => [pathHash(steps), valueHash(getAt(mapped, steps), aliases)]));
      body.meta = { tag: withOwnershipTag(stored?.meta?.tag, table, ownershipTag(table, values)) };
    }
    return { body: body as unknown as Resource, conflicts: [], changed: changedElements(stored, body) };
  }
  const written = writtenBy(stored, table);
  const { meta: _meta, ...rest } = stored as Resource & { meta?: unknown };
  const body = clone(rest) as Json;
  const values = new Map<string, string>();
  const conflicts: string[] = [];
  const changed: string[] = [];
  for (const steps of paths) {
    const key = pathHash(steps);
    const current = getAt(body, steps);
    const value = getAt(mapped, steps);
    const next = valueHash(value, aliases);
    const now = valueHash(current, aliases);
    const last = written?.get(key);
    if (now === next) {
      values.set(key, next);
      continue;
    }
    if (last !== undefined && last !== now && !overwrite) {
      conflicts.push(pathText(steps));
      values.set(key, last);
      continue;
    }
    if (value === undefined) {
      deleteAt(body, steps);
    } else if (!sameReferenceTarget(current, value)) {
      setAt(body, steps, clone(value));
    }
    if (!sameReferenceTarget(current, value)) {
      changed.push(pathText(steps));
    }
    values.set(key, next);
  }
  keepIdentifier(body, write.match);
  const merged = (compact(body) ?? { resourceType: stored.resourceType }) as Json;
  merged.meta = { tag: withOwnershipTag(stored.meta?.tag, table, ownershipTag(table, values)) };
  return { body: merged as unknown as Resource, conflicts, changed };
}

/** Top-level elements that differ (all of them for a new resource); server-managed ones aside. */
function changedElements(stored: Resource | undefined, body: Json): string[] {
  const before = (stored ?? {}) as Json;
  const keys = new Set([...Object.keys(before), ...Object.keys(body)]);
  return [...keys].filter((k) => !['id', 'meta', 'resourceType'].includes(k) && !deepEquals(before[k], body[k]));
}

/**
 * True when sending `next` would change nothing: the same content (meta aside) and the same
 * record of what the table wrote (a stale record, e.g. after Medplum came to agree with the
 * source, is written once, or the next source change would look like a conflict).
 */
export function nothingToWrite(stored: Resource, next: Resource, table: string): boolean {
  const recorded = (r: Resource): string | undefined =>
    r.meta?.tag?.find((t) => t.system === OWNERSHIP_SYSTEM && t.code?.startsWith(`${table}:`))?.code;
  const record = recorded(next);
  return sameContent(stored, next) && (record === undefined || record === recorded(stored));
}

/** True when `next` holds what `stored` holds (meta aside). */
export function sameContent(stored: Resource, next: Resource): boolean {
  const { meta: _stored, ...storedContent } = stored as Resource & { meta?: unknown };
  const { meta: _next, ...nextContent } = next as Resource & { meta?: unknown };
  return deepEquals(storedContent, nextContent);
}

/** The value at a path of a built body; a repeating element without an index at the end is the whole list. */
export function getAt(body: Json, steps: readonly PathStep[]): unknown {
  let value: unknown = body;
  for (const [i, step] of steps.entries()) {
    if (typeof value !== 'object' || value === null) {
      return undefined;
    }
    value = (value as Json)[step.name];
    const last = i === steps.length - 1;
    if (step.isArray && Array.isArray(value) && (step.index !== undefined || !last)) {
      value = value[step.index ?? 0];
    }
  }
  return value;
}

function deleteAt(body: Json, steps: readonly PathStep[]): void {
  let target: unknown = body;
  for (const step of steps.slice(0, -1)) {
    if (typeof target !== 'object' || target === null) {
      return;
    }
    const next = (target as Json)[step.name];
    target = step.isArray && Array.isArray(next) ? next[step.index ?? 0] : next;
  }
  if (typeof target !== 'object' || target === null) {
    return;
  }
  const step = steps[steps.length - 1];
  const list = (target as Json)[step.name];
  if (step.isArray && step.index !== undefined && Array.isArray(list)) {
    // Left as a hole, closed by compact(): removing it now would shift the later paths' positions.
    list[step.index] = undefined;
  } else {
    delete (target as Json)[step.name];
  }
}

/**
 * A reference the server has decorated (a `display` it added) still points where the mapping
 * points: keep the stored one, so an unchanged row stays unchanged.
 */
function sameReferenceTarget(stored: unknown, mapped: unknown): boolean {
  if (!isReference(stored) || !isReference(mapped) || stored.reference !== mapped.reference) {
    return false;
  }
  const { display: _display, ...storedRest } = stored;
  return mapped.display === undefined && deepEquals(storedRest, mapped);
}

function isReference(value: unknown): value is { reference: string; display?: string } {
  return typeof value === 'object' && value !== null && typeof (value as Json).reference === 'string';
}

function keepIdentifier(body: Json, match: { system: string; value: string }): void {
  const identifiers = (Array.isArray(body.identifier) ? body.identifier : []) as Identifier[];
  if (!identifiers.some((i) => i?.system === match.system && i?.value === match.value)) {
    body.identifier = [{ system: match.system, value: match.value }, ...identifiers];
  }
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
