import { resolve } from 'node:path';
import type { MappingFileSource, MappingProblem, MappingSet } from '../lib';
import { BUILT_IN_TABLES, DEFAULT_PROFILE, loadMappingSet, loadProfile, MAPPING_SUFFIX, MappingSetError, profileNames } from '../lib';
import type { MappingFileOnDisk } from '../lib/mapping/folder';
import { readMappingFiles } from '../lib/mapping/folder';
import { PROFILE_MANIFEST } from '../lib/mapping/load';
import { isPlainObject, isStringList } from '../lib/mapping/shape';
import { builtInProfileFiles } from '../lib/profiles/builtin';

/** What the command line was asked to import with: `--profile` and `--mapping` (each may be absent). */
export interface MappingChoice {
  profile?: string;
  mappings: readonly string[];
}

export interface ChosenSet {
  set: MappingSet;
  /** For the "Mappings:" line, e.g. `profile guide` or `profile synthea-csv + labs/`. */
  description: string;
}

/**
 * The mapping set to import with:
 * - neither option: the default profile (guide);
 * - `--profile` only: that profile;
 * - `--mapping` only: the given folders and files, nothing else;
 * - both: the profile's files plus the given ones, where a given mapping replaces the profile's
 *   mapping (or built-in table) of the same table `name`.
 * Built-in TypeScript tables are always available to a set's `profile.json`. Several
 * `profile.json` (the profile's, a given folder's) are merged: the set includes every table they
 * list. Problems reading or loading the set are thrown as one MappingSetError, each naming the
 * file (its path) and the place in it.
 */
export function chooseMappingSet(choice: MappingChoice): ChosenSet {
  if (choice.mappings.length === 0) {
    const profile = choice.profile ?? DEFAULT_PROFILE;
    return { set: loadProfile(profile), description: `profile ${profile}` };
  }

  const problems: MappingProblem[] = [];
  const given: MappingFileOnDisk[] = [];
  const givenDictionaries: MappingFileOnDisk[] = [];
  const manifests: MappingFileOnDisk[] = [];
  const seen = new Set<string>();
  for (const path of choice.mappings) {
    const files = readMappingFiles(path);
    problems.push(...files.problems);
    for (const file of files.mappings) {
      if (!seen.has(resolve(file.path))) {
        seen.add(resolve(file.path));
        given.push(file);
      }
    }
    givenDictionaries.push(...files.dictionaries);
    if (files.manifest) {
      manifests.push(files.manifest);
    }
  }
  if (problems.length) {
    // Paths that do not exist or cannot be read: what is left would fail for want of them.
    throw new MappingSetError(problems);
  }

  const replaced = new Set(given.map((f) => mappingName(f.text)).filter((n): n is string => n !== undefined));
  const profileFiles: MappingFileOnDisk[] = [];
  const profileDictionaries: MappingFileOnDisk[] = [];
  let profileManifest: MappingFileOnDisk | undefined;
  if (choice.profile) {
    const files = builtInProfileFiles()[choice.profile];
    if (!files) {
      throw new Error(unknownProfileMessage(choice.profile));
    }
    for (const file of files) {
      const path = `profiles/${choice.profile}/${file.name}`;
      if (file.name.endsWith(MAPPING_SUFFIX)) {
        const name = mappingName(file.text);
        if (name === undefined || !replaced.has(name)) {
          profileFiles.push({ name: path, path, text: file.text });
        }
      } else if (file.name === PROFILE_MANIFEST) {
        profileManifest = { ...file, path };
        manifests.unshift(profileManifest);
      } else if (/\.csv$/i.test(file.name)) {
        profileDictionaries.push({ ...file, path });
      }
    }
  }

  const dictionaries = mergeDictionaries(givenDictionaries, profileDictionaries, problems);
  const tables = includedTables(manifests, profileManifest, replaced, problems);
  const sources: MappingFileSource[] = [...profileFiles, ...given, ...dictionaries].map(({ name, text }) => ({ name, text }));
  if (manifests.length) {
    sources.push({ name: PROFILE_MANIFEST, text: JSON.stringify({ tables }) });
  }

  let set: MappingSet | undefined;
  try {
    set = loadMappingSet(sources, BUILT_IN_TABLES);
  } catch (err) {
    if (!(err instanceof MappingSetError)) {
      throw err;
    }
    problems.push(...err.problems);
  }
  if (problems.length || !set) {
    throw new MappingSetError(problems);
  }
  const description = [...(choice.profile ? [`profile ${choice.profile}`] : []), ...choice.mappings].join(' + ');
  return { set, description };
}

export function unknownProfileMessage(name: string): string {
  return `unknown profile '${name}' (known profiles: ${profileNames().join(', ')})`;
}

/** A mapping file's table name, when it parses and has one (else loadMappingSet reports it). */
function mappingName(text: string): string | undefined {
  try {
    const json: unknown = JSON.parse(text);
    return isPlainObject(json) && typeof json.name === 'string' ? json.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Dictionaries are looked up by file name across the set. The same name twice with the same text
 * is one dictionary; a given folder's dictionary wins over the profile's of the same name; two
 * given folders with different dictionaries of one name are refused (rename one).
 */
function mergeDictionaries(given: MappingFileOnDisk[], profile: MappingFileOnDisk[], problems: MappingProblem[]): MappingFileOnDisk[] {
  const byName = new Map<string, MappingFileOnDisk>();
  for (const file of given) {
    const earlier = byName.get(file.name);
    if (!earlier) {
      byName.set(file.name, file);
    } else if (earlier.text !== file.text && resolve(earlier.path) !== resolve(file.path)) {
      problems.push({
        file: file.path,
        at: '',
        message: `a different dictionary of the same name is ${earlier.path}: dictionaries are found by file name across the mappings, rename one`,
      });
    }
  }
  for (const file of profile) {
    if (!byName.has(file.name)) {
      byName.set(file.name, file);
    }
  }
  return [...byName.values()];
}

/**
 * The built-in tables every `profile.json` of the set lists (checked here, so that a problem names
 * the manifest's path), less the profile's tables that a given mapping replaces.
 */
function includedTables(
  manifests: readonly MappingFileOnDisk[],
  profileManifest: MappingFileOnDisk | undefined,
  replaced: ReadonlySet<string>,
  problems: MappingProblem[]
): string[] {
  const tables: string[] = [];
  for (const manifest of manifests) {
    let json: unknown;
    try {
      json = JSON.parse(manifest.text);
    } catch (err) {
      problems.push({ file: manifest.path, at: '', message: `not valid JSON: ${(err as Error).message}` });
      continue;
    }
    if (!isPlainObject(json) || (json.tables !== undefined && !isStringList(json.tables))) {
      problems.push({ file: manifest.path, at: '/tables', message: '"tables" lists built-in tables by name' });
      continue;
    }
    for (const [i, name] of ((json.tables as string[] | undefined) ?? []).entries()) {
      if (!BUILT_IN_TABLES.some((t) => t.name === name)) {
        const known = BUILT_IN_TABLES.map((t) => t.name).join(', ') || 'none';
        problems.push({ file: manifest.path, at: `/tables/${i}`, message: `no built-in table named '${name}' (there are ${known})` });
      } else if (!(manifest === profileManifest && replaced.has(name)) && !tables.includes(name)) {
        tables.push(name);
      }
    }
  }
  return tables;
}
