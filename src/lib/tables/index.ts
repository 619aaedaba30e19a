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

/** Finds the table a header row belongs to, or names what is wrong with it. */
export function detectTable(columns: readonly string[], tables: readonly TableDefinition[]): TableMatch {
  const present = new Set(columns);
  let best: { table: TableDefinition; matched: number; missing: string[] } | undefined;
  for (const table of tables) {
    const missing = table.columns.filter((c) => c.required && !present.has(c.name)).map((c) => c.name);
    const matched = table.columns.filter((c) => present.has(c.name)).length;
    if (missing.length === 0 && (!best || best.missing.length > 0 || matched > best.matched)) {
      best = { table, matched, missing };
    } else if (!best || (best.missing.length > 0 && matched > best.matched)) {
      best = { table, matched, missing };
    }
  }
  if (best && best.missing.length === 0) {
    return { table: best.table };
  }
  if (best && best.matched > 0) {
    return {
      problem: `the header looks like the '${best.table.name}' table but is missing required column(s): ${best.missing.join(', ')}`,
    };
  }
  return {
    problem: `the header matches no known table (${tables
      .map((t) => `${t.name}: ${t.columns.filter((c) => c.required).map((c) => c.name).join(', ')}`)
      .join('; ')})`,
  };
}

export function findTable(name: string, tables: readonly TableDefinition[]): TableDefinition | undefined {
  const wanted = normalizeColumnName(name);
  return tables.find((t) => t.name === wanted);
}
