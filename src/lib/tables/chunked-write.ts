import type { MedplumClient, PatchOperation } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { tokenParam } from '../fhir/search-values';
import type { ResourceWrite } from './types';

/** Runs a request with the executor's retry policy (BatchExecutor.retrying). */
export type Retrying = <T>(what: string, request: () => Promise<T>) => Promise<T>;

/** What writing a resource did. */
export type ChunkedWriteResult = 'created' | 'updated' | 'unchanged';

/** Rounds of writes after which a resource that still differs is given up on (a bug, not a big resource). */
const MAX_ROUNDS = 1000;

const utf8 = new TextEncoder();
const byteLength = (value: unknown): number => utf8.encode(JSON.stringify(value)).length;

/**
 * Writes a resource too large for one request (the server refuses bodies over 1 MB) in requests
 * of at most `maxBytes`: the list at `write.listPath` (a JSON pointer, e.g. `/concept`) is split.
 * A missing (or differently shaped) resource is written with a conditional PUT holding the first
 * part of the list; the rest follows as JSON Patch appends. Every patch starts with a `test` of
 * `meta.versionId`, so a patch re-sent after a lost answer fails instead of appending twice; the
 * writer then re-reads the resource and works out again what is missing. Unchanged, nothing is written.
 * Readers may see the list partly written while this runs; a failed run is completed by the next.
 */
export async function writeInChunks(
  medplum: MedplumClient,
  write: ResourceWrite & { listPath: string },
  retrying: Retrying,
  maxBytes: number
): Promise<ChunkedWriteResult> {
  const type = write.resource.resourceType;
  const query = { identifier: tokenParam(write.match.system, write.match.value) };
  const read = (): Promise<Resource | undefined> =>
    retrying(`reading the ${write.label}`, () => medplum.searchOne(type, query, { cache: 'no-cache' }));

  let stored = await read();
  const existed = stored !== undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const step = nextStep(stored, write.resource, write.listPath, maxBytes);
    if (step.kind === 'done') {
      return round === 0 ? 'unchanged' : existed ? 'updated' : 'created';
    }
    if (step.kind === 'put') {
      stored = await retrying(`writing the ${write.label}`, () => medplum.upsertResource(step.resource, query));
      continue;
    }
    const target = stored as Resource & { id: string };
    try {
      stored = await retrying(`writing the ${write.label}`, () => medplum.patchResource(type, target.id, step.operations));
    } catch (err) {
      // The version test failed when the resource changed under us (or a lost answer's patch landed):
      // start again from what is stored. Otherwise the patch itself was refused.
      const current = await read();
      if (current?.meta?.versionId === target.meta?.versionId) {
        throw err;
      }
      stored = current;
    }
  }
  throw new Error(`the ${write.label} still differs after ${MAX_ROUNDS} writes`);
}

type Step = { kind: 'done' } | { kind: 'put'; resource: Resource } | { kind: 'patch'; operations: PatchOperation[] };

/** The next write that brings `stored` closer to `desired`, within `maxBytes`. */
function nextStep(stored: Resource | undefined, desired: Resource, listPath: string, maxBytes: number): Step {
  const path = pointerSegments(listPath);
  const desiredList = listAt(desired, path);
  if (!stored) {
    return { kind: 'put', resource: withListPrefix(desired, path, desiredList, maxBytes) };
  }
  const headOps = headOperations(stored, desired, path);
  if (headOps === 'rewrite') {
    return { kind: 'put', resource: withListPrefix(desired, path, desiredList, maxBytes) };
  }
  const listOps = listOperations(listAt(stored, path), desiredList, listPath);
  // The list first, the fields beside it (CodeSystem.count) last: they describe the finished list.
  const operations = [...listOps, ...headOps];
  if (operations.length === 0) {
    return { kind: 'done' };
  }
  const versionTest: PatchOperation = { op: 'test', path: '/meta/versionId', value: stored.meta?.versionId };
  return { kind: 'patch', operations: [versionTest, ...fitting(operations, maxBytes - byteLength([versionTest]))] };
}

function pointerSegments(pointer: string): (string | number)[] {
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}

function listAt(resource: unknown, path: readonly (string | number)[]): unknown[] | undefined {
  let node = resource as Record<string | number, unknown> | undefined;
  for (const segment of path) {
    node = node?.[segment] as Record<string | number, unknown> | undefined;
  }
  return Array.isArray(node) ? node : undefined;
}

/** A copy of the resource with the list at `path` replaced (the path's parents must exist when `list` is given). */
function withList(resource: Resource, path: readonly (string | number)[], list: unknown[] | undefined): Resource {
  const copy = structuredCloneJson(resource);
  let node = copy as unknown as Record<string | number, unknown>;
  for (const segment of path.slice(0, -1)) {
    const next = node[segment] as Record<string | number, unknown> | undefined;
    if (!next) {
      return copy;
    }
    node = next;
  }
  const last = path[path.length - 1];
  if (list === undefined) {
    delete node[last];
  } else {
    node[last] = list;
  }
  return copy;
}

/** JSON round trip: the bot runtime has no structuredClone, and resources are JSON anyway. */
function structuredCloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The resource with as much of the start of its list as fits in `maxBytes`. */
function withListPrefix(resource: Resource, path: readonly (string | number)[], list: unknown[] | undefined, maxBytes: number): Resource {
  if (!list?.length) {
    return resource;
  }
  let size = byteLength(withList(resource, path, []));
  let count = 0;
  while (count < list.length && size + byteLength(list[count]) + 1 <= maxBytes) {
    size += byteLength(list[count]) + 1;
    count++;
  }
  if (count === 0) {
    throw new Error(`one entry of the list at ${path.join('.')} does not fit a ${maxBytes}-byte request`);
  }
  return withList(resource, path, list.slice(0, count));
}

/**
 * Patch operations for the fields beside the list (compared with the list left out), or
 * 'rewrite' when the element holding a nested list differs (it cannot be patched around the list).
 */
function headOperations(stored: Resource, desired: Resource, path: readonly (string | number)[]): PatchOperation[] | 'rewrite' {
  const storedHead = withList(stored, path, undefined) as unknown as Record<string, unknown>;
  const desiredHead = withList(desired, path, undefined) as unknown as Record<string, unknown>;
  const operations: PatchOperation[] = [];
  const keys = new Set([...Object.keys(storedHead), ...Object.keys(desiredHead)]);
  for (const key of keys) {
    if (key === 'id' || key === 'meta' || JSON.stringify(storedHead[key]) === JSON.stringify(desiredHead[key])) {
      continue;
    }
    if (path.length > 1 && key === path[0]) {
      return 'rewrite';
    }
    operations.push(
      key in desiredHead
        ? { op: key in storedHead ? 'replace' : 'add', path: `/${key}`, value: desiredHead[key] }
        : { op: 'remove', path: `/${key}` }
    );
  }
  return operations;
}

/**
 * Replaces of the entries that differ, then appends of the new ones, or removals from the end. A
 * list that is not there yet is added with its first entry (its parent exists: a missing parent
 * makes headOperations ask for a rewrite).
 */
function listOperations(before: unknown[] | undefined, after: unknown[] | undefined, listPath: string): PatchOperation[] {
  const existing = before ?? [];
  const wanted = after ?? [];
  if (wanted.length === 0) {
    return existing.length ? [{ op: 'remove', path: listPath }] : [];
  }
  const operations: PatchOperation[] = [];
  for (let i = 0; i < Math.min(existing.length, wanted.length); i++) {
    if (JSON.stringify(existing[i]) !== JSON.stringify(wanted[i])) {
      operations.push({ op: 'replace', path: `${listPath}/${i}`, value: wanted[i] });
    }
  }
  let next = existing.length;
  if (before === undefined) {
    operations.push({ op: 'add', path: listPath, value: [wanted[0]] });
    next = 1;
  }
  for (let i = next; i < wanted.length; i++) {
    operations.push({ op: 'add', path: `${listPath}/-`, value: wanted[i] });
  }
  for (let i = existing.length - 1; i >= wanted.length; i--) {
    operations.push({ op: 'remove', path: `${listPath}/${i}` });
  }
  return operations;
}

/** The leading operations whose patch body stays within `maxBytes` (at least one). */
function fitting(operations: readonly PatchOperation[], maxBytes: number): PatchOperation[] {
  let size = 0;
  let count = 0;
  while (count < operations.length && (count === 0 || size + byteLength(operations[count]) + 1 <= maxBytes)) {
    size += byteLength(operations[count]) + 1;
    count++;
  }
  return operations.slice(0, count);
}
