import { conditionCatalogTable } from './condition-catalog';
import { encountersTable } from './encounters';
import { patientConditionsTable } from './patient-conditions';
import { patientsTable } from './patients';
import type { TableDefinition } from './types';

/** The tables the bot knows, in dependency order. Users add theirs by passing their own list. */
export const defaultTables: readonly TableDefinition[] = [
  patientsTable,
  conditionCatalogTable,
  patientConditionsTable,
  encountersTable,
];

/**
 * Normalises a header cell: case, surrounding spaces and inner spaces/hyphens do not matter
 * ("Patient ID" and "patient-id" both read as patient_id).
 */
export function normalizeColumnName(name: string): string {
  return name
    .replace(/^\uFEFF/, '')
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

export type TableMatch = { table: TableDefinition } | { problem: string };

/** How the tables and their required columns are listed in messages. */
export function describeTables(tables: readonly TableDefinition[]): string {
  return tables.map((t) => `${t.name}: ${t.columns.filter((c) => c.required).map((c) => c.name).join(', ')}`).join('; ');
}

/**
 * Finds the table a header row belongs to, or names what is wrong with it. A header with every
 * required column of two or more tables is refused rather than guessed; "looks like" needs at
 * least two of a table's columns, since one shared name (patient_id) says little.
 */
export function detectTable(columns: readonly string[], tables: readonly TableDefinition[]): TableMatch {
  const present = new Set(columns);
  const scored = tables.map((table) => ({
    table,
    missing: table.columns.filter((c) => c.required && !present.has(c.name)).map((c) => c.name),
    matched: table.columns.filter((c) => present.has(c.name)).length,
  }));
  const complete = scored.filter((s) => s.missing.length === 0);
  if (complete.length === 1) {
    return { table: complete[0].table };
  }
  if (complete.length > 1) {
    return {
      problem:
        `the header has every required column of more than one table (${complete.map((s) => s.table.name).join(', ')}): ` +
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

/** Every column name the tables know: header cells that may be named in messages as they are. */
export function knownColumnNames(tables: readonly TableDefinition[]): Set<string> {
  return new Set(tables.flatMap((t) => t.columns.map((c) => c.name)));
}

export function findTable(name: string, tables: readonly TableDefinition[]): TableDefinition | undefined {
  const wanted = normalizeColumnName(name);
  return tables.find((t) => t.name === wanted);
}
