import { normalizeColumnName } from '../tables/columns';
import type { FileProblems } from './problems';
import { pointer } from './problems';
import { isPlainObject } from './shape';

/** A compiled condition: reads cells through `cell` (trimmed, '' when empty). */
export type RowTest = (cell: (column: string) => string) => boolean;

const TESTS = ['present', 'empty', 'equals', 'in', 'matches'] as const;

/**
 * Compiles a condition (see format.ts): `{ column, <one test> }`, `{ all }`, `{ any }`, `{ not }`.
 * Text comparisons ignore case. Problems are added to `problems`; undefined when there were any.
 */
export function compileCondition(
  value: unknown,
  at: string,
  problems: FileProblems,
  known: (column: string) => boolean,
  used: Set<string>
): RowTest | undefined {
  if (!isPlainObject(value)) {
    problems.add(at, 'a condition must be an object: { "column": ..., "present": true } or { "all" | "any": [...] } or { "not": ... }');
    return undefined;
  }
  const keys = Object.keys(value);
  if ('all' in value || 'any' in value) {
    const kind = 'all' in value ? 'all' : 'any';
    const list = value[kind];
    if (keys.length !== 1 || !Array.isArray(list) || list.length === 0) {
      problems.add(at, `"${kind}" takes a non-empty list of conditions and nothing else`);
      return undefined;
    }
    const tests = list.map((c, i) => compileCondition(c, pointer(at, kind, i), problems, known, used));
    if (tests.some((t) => t === undefined)) {
      return undefined;
    }
    const compiled = tests as RowTest[];
    return kind === 'all' ? (cell) => compiled.every((t) => t(cell)) : (cell) => compiled.some((t) => t(cell));
  }
  if ('not' in value) {
    if (keys.length !== 1) {
      problems.add(at, '"not" takes one condition and nothing else');
      return undefined;
    }
    const inner = compileCondition(value.not, pointer(at, 'not'), problems, known, used);
    return inner && ((cell) => !inner(cell));
  }
  return compileColumnTest(value, at, problems, known, used);
}

function compileColumnTest(
  value: Record<string, unknown>,
  at: string,
  problems: FileProblems,
  known: (column: string) => boolean,
  used: Set<string>
): RowTest | undefined {
  const unknownMembers = Object.keys(value).filter((k) => k !== 'column' && !(TESTS as readonly string[]).includes(k));
  if (unknownMembers.length) {
    problems.add(at, `unknown member(s) ${unknownMembers.map((k) => `"${k}"`).join(', ')} (a test is one of ${TESTS.join(', ')})`);
    return undefined;
  }
  if (typeof value.column !== 'string') {
    problems.add(at, 'a test needs "column": the column it tests');
    return undefined;
  }
  const column = normalizeColumnName(value.column);
  if (!known(column)) {
    problems.add(pointer(at, 'column'), `column '${column}' is not declared in "columns"`);
    return undefined;
  }
  used.add(column);
  const tests = TESTS.filter((t) => t in value);
  if (tests.length !== 1) {
    problems.add(at, `a test has exactly one of ${TESTS.join(', ')}`);
    return undefined;
  }
  const test = tests[0];
  const argument = value[test];
  switch (test) {
    case 'present':
    case 'empty':
      if (argument !== true) {
        problems.add(pointer(at, test), `"${test}" takes true`);
        return undefined;
      }
      return test === 'present' ? (cell) => cell(column) !== '' : (cell) => cell(column) === '';
    case 'equals': {
      if (typeof argument !== 'string') {
        problems.add(pointer(at, test), '"equals" takes a text');
        return undefined;
      }
      const wanted = argument.trim().toLowerCase();
      return (cell) => cell(column).toLowerCase() === wanted;
    }
    case 'in': {
      if (!Array.isArray(argument) || argument.some((a) => typeof a !== 'string')) {
        problems.add(pointer(at, test), '"in" takes a list of texts');
        return undefined;
      }
      const wanted = new Set(argument.map((a: string) => a.trim().toLowerCase()));
      return (cell) => wanted.has(cell(column).toLowerCase());
    }
    case 'matches': {
      if (typeof argument !== 'string') {
        problems.add(pointer(at, test), '"matches" takes a regular expression');
        return undefined;
      }
      let pattern: RegExp;
      try {
        pattern = new RegExp(`^(?:${argument})$`, 'iu');
      } catch (err) {
        problems.add(pointer(at, test), `not a valid regular expression: ${(err as Error).message}`);
        return undefined;
      }
      return (cell) => pattern.test(cell(column));
    }
  }
}
