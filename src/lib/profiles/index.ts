import type { MappingSet } from '../mapping/load';
import { loadMappingSet } from '../mapping/load';
import { conditionCatalogTable } from '../tables/condition-catalog';
import type { TableDefinition } from '../tables/types';
import { builtInProfileFiles } from './builtin';

/** The profile used when none is named: the tables of Medplum's migration guide. */
export const DEFAULT_PROFILE = 'guide';

/** TypeScript tables a mapping set may include by name (profile.json "tables"): what data cannot express. */
export const BUILT_IN_TABLES: readonly TableDefinition[] = [conditionCatalogTable];

const loaded = new Map<string, MappingSet>();

export function profileNames(): string[] {
  return Object.keys(builtInProfileFiles());
}

/** A shipped profile, loaded and checked once per process. */
export function loadProfile(name: string): MappingSet {
  let set = loaded.get(name);
  if (!set) {
    const files = builtInProfileFiles()[name];
    if (!files) {
      throw new Error(`unknown profile '${name}' (there are ${profileNames().join(', ')})`);
    }
    set = loadMappingSet(files, BUILT_IN_TABLES);
    loaded.set(name, set);
  }
  return set;
}
