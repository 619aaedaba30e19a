import type { FileProblems } from './problems';
import { pointer } from './problems';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks that an object has only the members named (so a typo is an error rather than silently
 * ignored); returns false when it had others.
 */
export function onlyMembers(value: Record<string, unknown>, allowed: readonly string[], at: string, problems: FileProblems): boolean {
  const unknown = Object.keys(value).filter((k) => !allowed.includes(k));
  for (const key of unknown) {
    problems.add(pointer(at, key), `unknown member "${key}" (allowed here: ${allowed.join(', ')})`);
  }
  return unknown.length === 0;
}

export function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
