import { DEFAULT_PROFILE, loadProfile } from '../profiles';
import { normalizeColumnName } from './columns';
import type { TableDefinition } from './types';

/** The tables used when none are given: the default profile's (the migration guide's four tables). */
export function defaultTables(): readonly TableDefinition[] {
  return loadProfile(DEFAULT_PROFILE).tables;
}

export { normalizeColumnName } from './columns';

export type TableMatch = { table: TableDefinition } | { problem: string };

/** How the tables and their required columns are listed in messages. */
export function describeTables(tables: readonly TableDefinition[]): string {
  return tables.map((t) => `${t.name}: ${t.columns.filter((c) => c.required).map((c) => c.name).join(', ')}`).join('; ');
}

/**
 * Finds the table a header row belongs to, or names what is wrong with it. Candidates are the
 * tables whose required columns are all in the header (and whose file-name patterns, when they
 * have some, match the file's name); the one that reads the most of the header's columns wins,
 * and a tie is refused rather than guessed. "Looks like" needs at least two of a table's
 * columns, since one shared name (patient_id) says little.
 */
export function detectTable(columns: readonly string[], tables: readonly TableDefinition[], fileName?: string): TableMatch {
  const present = new Set(columns);
  const scored = tables
    .filter((table) => fileName === undefined || !table.fileNames?.length || matchesFileName(fileName, table.fileNames))
    .map((table) => ({
      table,
      missing: table.columns.filter((c) => c.required && !present.has(c.name)).map((c) => c.name),
      matched: table.columns.filter((c) => present.has(c.name)).length,
    }));
  const complete = scored.filter((s) => s.missing.length === 0).sort((a, b) => b.matched - a.matched);
  if (complete.length === 1 || (complete.length > 1 && complete[0].matched > complete[1].matched)) {
    return { table: complete[0].table };
  }
  if (complete.length > 1) {
    const tied = complete.filter((s) => s.matched === complete[0].matched).map((s) => s.table.name);
    return {
      problem:
        `the header fits more than one table equally (${tied.join(', ')}): ` +
        'name the table to import it as (--table on the command line, "table" in the bot input)',
    };
  }
  const closest = scored.filter((s) => s.matched >= 2).sort((a, b) => b.matched - a.matched)[0];
  if (closest) {
    return {
      problem: `the header looks like the '${closest.table.name}' table but is missing required column(s): ${closest.missing.join(', ')}`,
    };
  }
  return { problem: `the header matches no known table (${describeTables(tables)})` };
}

/** A file name against `*`/`?` patterns, regardless of case and folders. */
export function matchesFileName(fileName: string, patterns: readonly string[]): boolean {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return patterns.some((pattern) => {
    const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp(`^${regex}$`, 'i').test(base);
  });
}

/** Every column name the tables know: header cells that may be named in messages as they are. */
export function knownColumnNames(tables: readonly TableDefinition[]): Set<string> {
  return new Set(tables.flatMap((t) => t.columns.map((c) => c.name)));
}

export function findTable(name: string, tables: readonly TableDefinition[]): TableDefinition | undefined {
  const wanted = normalizeColumnName(name);
  return tables.find((t) => t.name === wanted);
}
