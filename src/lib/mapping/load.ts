import { orderByDependencies } from '../engine/order';
import type { TableDefinition } from '../tables/types';
import type { CompiledMapping } from './compile';
import { compileMapping } from './compile';
import { loadFhirDefinitions } from './fhir-elements';
import type { MappingOutline } from './outline';
import { outlineMapping } from './outline';
import type { MappingProblem } from './problems';
import { FileProblems, MappingSetError } from './problems';
import { isPlainObject, isStringList } from './shape';

/** A file of a mapping set: `*.mapping.json`, a dictionary CSV, or the set's `profile.json`. */
export interface MappingFileSource {
  name: string;
  text: string;
}

/** A loaded, checked mapping set: the tables to import with. */
export interface MappingSet {
  mappings: CompiledMapping[];
  /** The mappings' tables and the built-in TypeScript tables the set asks for: parents first, then by name. */
  tables: TableDefinition[];
  /** Resource types the set writes (the bot's access policy is derived from them). */
  writes: string[];
}

export const MAPPING_SUFFIX = '.mapping.json';
/** Names built-in TypeScript tables a set includes: `{ "tables": ["conditions"] }`. */
export const PROFILE_MANIFEST = 'profile.json';

/**
 * Loads a mapping set: every `*.mapping.json` is parsed, checked against the format and the FHIR
 * R4 definitions, and compiled, before any row is read. All problems are reported at once
 * (MappingSetError), each naming the file and the place in it. `builtIn`: TypeScript tables a
 * set may include by name (what data cannot express).
 */
export function loadMappingSet(files: readonly MappingFileSource[], builtIn: readonly TableDefinition[] = []): MappingSet {
  const problems: MappingProblem[] = [];
  const dictionaries = new Map(files.filter((f) => /\.csv$/i.test(f.name)).map((f) => [f.name, f.text]));
  const outlines = new Map<string, MappingOutline>();
  for (const file of files.filter((f) => f.name.endsWith(MAPPING_SUFFIX))) {
    const fileProblems = new FileProblems(file.name, problems);
    const json = parseJson(file, fileProblems);
    const outline = json === undefined ? undefined : outlineMapping(file.name, json, fileProblems);
    if (!outline) {
      continue;
    }
    const clash = outlines.get(outline.name);
    if (clash) {
      fileProblems.add('/name', `'${outline.name}' is also the name of ${clash.file}: table names are unique in a set`);
      continue;
    }
    outlines.set(outline.name, outline);
  }
  const included = includedTables(files, builtIn, problems);
  for (const table of included) {
    if (outlines.has(table.name)) {
      problems.push({ file: outlines.get(table.name)?.file ?? '', at: '/name', message: `'${table.name}' is also a built-in table of this set` });
    }
  }
  if (outlines.size === 0 && included.length === 0 && problems.length === 0) {
    problems.push({ file: '', at: '', message: `no mappings: a mapping set holds *${MAPPING_SUFFIX} files` });
  }

  loadFhirDefinitions([...outlines.values()].flatMap((o) => o.resources.map((r) => r.type)));
  const mappings: CompiledMapping[] = [];
  for (const outline of outlines.values()) {
    const compiled = compileMapping(outline, outlines, dictionaries);
    if (compiled) {
      mappings.push(compiled);
    }
  }
  const tables = [...mappings.map((m) => m.table), ...included];
  checkDependencies(tables, outlines, problems);
  if (problems.length) {
    throw new MappingSetError(problems);
  }
  return {
    mappings,
    tables: orderByDependencies([...tables].sort((a, b) => a.name.localeCompare(b.name)), (t) => t),
    writes: [...new Set(mappings.flatMap((m) => m.writes))].sort(),
  };
}

function parseJson(file: MappingFileSource, problems: FileProblems): unknown {
  try {
    return JSON.parse(file.text);
  } catch (err) {
    problems.add('', `not valid JSON: ${(err as Error).message}`);
    return undefined;
  }
}

function includedTables(files: readonly MappingFileSource[], builtIn: readonly TableDefinition[], problems: MappingProblem[]): TableDefinition[] {
  const manifest = files.find((f) => f.name === PROFILE_MANIFEST);
  if (!manifest) {
    return [];
  }
  const fileProblems = new FileProblems(manifest.name, problems);
  const json = parseJson(manifest, fileProblems);
  if (json === undefined) {
    return [];
  }
  if (!isPlainObject(json) || (json.tables !== undefined && !isStringList(json.tables))) {
    fileProblems.add('/tables', '"tables" lists built-in tables by name');
    return [];
  }
  const names = (json.tables as string[] | undefined) ?? [];
  return names.flatMap((name, i) => {
    const table = builtIn.find((t) => t.name === name);
    if (!table) {
      fileProblems.add(`/tables/${i}`, `no built-in table named '${name}' (there are ${builtIn.map((t) => t.name).join(', ') || 'none'})`);
      return [];
    }
    return [table];
  });
}

function checkDependencies(tables: readonly TableDefinition[], outlines: ReadonlyMap<string, MappingOutline>, problems: MappingProblem[]): void {
  const names = new Set(tables.map((t) => t.name));
  for (const table of tables) {
    for (const parent of table.dependsOn) {
      if (!names.has(parent)) {
        problems.push({ file: outlines.get(table.name)?.file ?? table.name, at: '/dependsOn', message: `depends on '${parent}', which is not in the set` });
      }
    }
  }
  const cycle = findCycle(tables);
  if (cycle) {
    problems.push({ file: outlines.get(cycle[0])?.file ?? cycle[0], at: '', message: `the tables depend on each other in a cycle: ${cycle.join(' -> ')}` });
  }
}

function findCycle(tables: readonly TableDefinition[]): string[] | undefined {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const state = new Map<string, 'visiting' | 'done'>();
  const walk = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'done') {
      return undefined;
    }
    if (state.get(name) === 'visiting') {
      return [...path.slice(path.indexOf(name)), name];
    }
    state.set(name, 'visiting');
    for (const parent of byName.get(name)?.dependsOn ?? []) {
      const found = byName.has(parent) ? walk(parent, [...path, name]) : undefined;
      if (found) {
        return found;
      }
    }
    state.set(name, 'done');
    return undefined;
  };
  for (const table of tables) {
    const found = walk(table.name, []);
    if (found) {
      return found;
    }
  }
  return undefined;
}
