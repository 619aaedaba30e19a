import type { TableDefinition } from '../tables/types';

/**
 * Orders work so parents come before children (patients and the catalog before
 * patient_conditions and encounters), keeping the given order among independent items.
 * Tables are ranked by their position in a topological order of `dependsOn`.
 */
export function orderByDependencies<T>(items: readonly T[], tableOf: (item: T) => TableDefinition | undefined): T[] {
  const rank = new Map<string, number>();
  const visiting = new Set<string>();
  const tables = new Map<string, TableDefinition>();
  for (const item of items) {
    const table = tableOf(item);
    if (table) {
      tables.set(table.name, table);
    }
  }
  const depth = (name: string): number => {
    const known = rank.get(name);
    if (known !== undefined) {
      return known;
    }
    if (visiting.has(name)) {
      throw new Error(`tables depend on each other in a cycle through ${name}`);
    }
    visiting.add(name);
    const parents = tables.get(name)?.dependsOn ?? [];
    const value = parents.length ? 1 + Math.max(...parents.map(depth)) : 0;
    visiting.delete(name);
    rank.set(name, value);
    return value;
  };
  return items
    .map((item, index) => ({ item, index, rank: tableOf(item) ? depth((tableOf(item) as TableDefinition).name) : -1 }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map((x) => x.item);
}
