import type { Coding, Resource } from '@medplum/fhirtypes';
import { hashA, hashB } from '../engine/id-registry';
import type { PathStep } from '../tables/types';

/**
 * What the importer last wrote into a resource, per table and element path, kept in the
 * resource itself (a `meta.tag`), so every importer (command line or bot, any run, any machine)
 * can tell an element a clinician changed in Medplum from one only the source changed:
 * `{ system: OWNERSHIP_SYSTEM, code: "<table>:<path hash>=<value hash>;..." }`. Hashes name
 * paths and values without holding them (values are patient data).
 */
export const OWNERSHIP_SYSTEM = 'urn:medplum-csv-import:written';

export type WrittenValues = ReadonlyMap<string, string>;

/** `name[0].given[1]` for a path's steps. */
export function pathText(steps: readonly PathStep[]): string {
  return steps.map((s) => (s.index === undefined ? s.name : `${s.name}[${s.index}]`)).join('.');
}

/** What the table last wrote into a stored resource, or undefined when it never wrote it (or before tags). */
export function writtenBy(resource: Resource, table: string): WrittenValues | undefined {
  const prefix = `${table}:`;
  const code = resource.meta?.tag?.find((t) => t.system === OWNERSHIP_SYSTEM && t.code?.startsWith(prefix))?.code;
  if (code === undefined) {
    return undefined;
  }
  const written = new Map<string, string>();
  for (const entry of code.slice(prefix.length).split(';')) {
    const [path, value] = entry.split('=');
    if (path && value) {
      written.set(path, value);
    }
  }
  return written;
}

/** The tag recording what the table writes now (`values`: path hash -> value hash). */
export function ownershipTag(table: string, values: WrittenValues): Coding {
  return { system: OWNERSHIP_SYSTEM, code: `${table}:${[...values].map(([p, v]) => `${p}=${v}`).join(';')}` };
}

/** The resource's tags with the table's own replaced by `tag`. */
export function withOwnershipTag(tags: readonly Coding[] | undefined, table: string, tag: Coding): Coding[] {
  const prefix = `${table}:`;
  return [...(tags ?? []).filter((t) => !(t.system === OWNERSHIP_SYSTEM && t.code?.startsWith(prefix))), tag];
}

export function pathHash(steps: readonly PathStep[]): string {
  return short(hashA(pathText(steps)), 6);
}

/**
 * A value's hash, the same whatever the order of its members and whether the server added a
 * display to a reference; '-' for no value.
 */
export function valueHash(value: unknown, aliases?: ReadonlyMap<string, string>): string {
  if (value === undefined) {
    return '-';
  }
  const text = canonical(value, aliases);
  return short(hashA(text), 6) + short(hashB(text), 6);
}

/**
 * JSON with sorted members. `aliases` name references to resources of the same row by what
 * they are, not by their `urn:uuid:` (new each run) or their id (unknown before the create).
 */
function canonical(value: unknown, aliases?: ReadonlyMap<string, string>): string {
  if (Array.isArray(value)) {
    return `[${value.map((v) => canonical(v, aliases)).join(',')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object)
      .filter((k) => object[k] !== undefined && !(k === 'display' && typeof object.reference === 'string'))
      .sort();
    const member = (k: string): string =>
      k === 'reference' && typeof object[k] === 'string' && aliases?.has(object[k] as string)
        ? JSON.stringify(aliases.get(object[k] as string))
        : canonical(object[k], aliases);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${member(k)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function short(hash: number, length: number): string {
  return hash.toString(36).padStart(length, '0').slice(-length);
}
