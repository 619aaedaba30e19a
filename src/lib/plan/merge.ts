import { deepEquals } from '@medplum/core';
import type { Identifier, Resource } from '@medplum/fhirtypes';
import { compact, setAt } from '../mapping/body';
import type { PathStep, ResourceWrite } from '../tables/types';

type Json = Record<string, unknown>;

/**
 * What to send for a write, given what Medplum holds (undefined: nothing yet). `replace`: the
 * mapped resource itself. `merge`: the stored resource with the write's own element paths set
 * from the mapped one, or removed where the mapped one has nothing; every other element is kept
 * (what clinicians or other files added). The source identifier is always kept or added.
 */
export function resourceToSend(stored: Resource | undefined, write: ResourceWrite): Resource {
  const mapped = write.resource as unknown as Json;
  if (!stored) {
    return clone(mapped) as unknown as Resource;
  }
  if (write.mode !== 'merge' || !write.paths) {
    return { ...(clone(mapped) as unknown as Resource), id: stored.id } as Resource;
  }
  const { meta: _meta, ...rest } = stored as Resource & { meta?: unknown };
  const body = clone(rest) as Json;
  for (const steps of write.paths) {
    const value = getAt(mapped, steps);
    if (value === undefined) {
      deleteAt(body, steps);
    } else if (!sameReferenceTarget(getAt(body, steps), value)) {
      setAt(body, steps, clone(value));
    }
  }
  keepIdentifier(body, write.match);
  return (compact(body) ?? { resourceType: stored.resourceType }) as Resource;
}

/** True when sending `next` would change nothing Medplum keeps (meta aside). */
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
