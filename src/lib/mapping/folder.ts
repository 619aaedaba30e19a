import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { TableDefinition } from '../tables/types';
import type { MappingFileSource, MappingSet } from './load';
import { loadMappingSet, MAPPING_SUFFIX, PROFILE_MANIFEST } from './load';
import type { MappingProblem } from './problems';
import { MappingSetError } from './problems';
import { isPlainObject } from './shape';

/** A file of a mapping set read from disk: `path` is where it was read (for messages). */
export interface MappingFileOnDisk extends MappingFileSource {
  path: string;
}

/** What one folder (or one mapping file) on disk contributes to a mapping set. */
export interface MappingFilesOnDisk {
  /** `*.mapping.json` files, named by their path (the path as given, or the folder joined with the file name). */
  mappings: MappingFileOnDisk[];
  /**
   * Dictionary CSVs the mappings name (`codes.<name>.file`) that are beside them, named as the
   * mappings name them (a plain file name: loadMappingSet looks dictionaries up by it).
   */
  dictionaries: MappingFileOnDisk[];
  /** The folder's `profile.json` (built-in tables the set includes); only for a folder given as a whole. */
  manifest?: MappingFileOnDisk;
  /** The path does not exist, is not a mapping file or folder, or could not be read. */
  problems: MappingProblem[];
}

/**
 * Reads a mapping set from disk. A folder brings its `*.mapping.json` files, its `profile.json`
 * when it has one, and the dictionary CSVs its mappings name; a single `*.mapping.json` file
 * brings the dictionary CSVs it names from its folder (not the folder's other mappings). Other
 * CSV files of the folder (data files kept beside the mappings) are not read. Nothing is checked
 * here beyond reading: loadMappingSet checks the set.
 */
export function readMappingFiles(path: string): MappingFilesOnDisk {
  const found: MappingFilesOnDisk = { mappings: [], dictionaries: [], problems: [] };
  const problem = (file: string, message: string): MappingFilesOnDisk => {
    found.problems.push({ file, at: '', message });
    return found;
  };
  let isFolder: boolean;
  try {
    isFolder = statSync(path).isDirectory();
  } catch (err) {
    return problem(path, describeFsError(err));
  }

  let folder: string;
  if (isFolder) {
    folder = path;
    let entries: string[];
    try {
      entries = readdirSync(path).sort();
    } catch (err) {
      return problem(path, describeFsError(err));
    }
    for (const entry of entries.filter((e) => e.endsWith(MAPPING_SUFFIX))) {
      const file = readFile(join(path, entry), join(path, entry), found.problems);
      if (file) {
        found.mappings.push(file);
      }
    }
    if (entries.includes(PROFILE_MANIFEST)) {
      found.manifest = readFile(join(path, PROFILE_MANIFEST), PROFILE_MANIFEST, found.problems);
    }
    if (found.mappings.length === 0 && !entries.includes(PROFILE_MANIFEST) && found.problems.length === 0) {
      return problem(path, `the folder has no *${MAPPING_SUFFIX} files (nor a ${PROFILE_MANIFEST}): a mapping set is a folder of mappings`);
    }
  } else {
    if (!path.endsWith(MAPPING_SUFFIX)) {
      return problem(path, `not a mapping: give a *${MAPPING_SUFFIX} file or a folder of them`);
    }
    folder = dirname(path);
    const file = readFile(path, path, found.problems);
    if (file) {
      found.mappings.push(file);
    }
  }

  const wanted = [...new Set(found.mappings.flatMap((m) => dictionaryNames(m.text)))].sort();
  for (const name of wanted) {
    const at = join(folder, name);
    if (!isFile(at)) {
      continue; // loadMappingSet names the mapping that wants it, and where
    }
    const file = readFile(at, name, found.problems);
    if (file) {
      found.dictionaries.push(file);
    }
  }
  return found;
}

/** Every file of `readMappingFiles`, as loadMappingSet takes them. */
export function mappingSources(files: MappingFilesOnDisk): MappingFileSource[] {
  return [...files.mappings, ...files.dictionaries, ...(files.manifest ? [files.manifest] : [])].map(({ name, text }) => ({ name, text }));
}

/**
 * Reads and loads a mapping set from a folder (or one mapping file). Problems reading it, and
 * every problem loadMappingSet finds, are thrown as a MappingSetError.
 */
export function loadMappingFolder(path: string, builtIn: readonly TableDefinition[] = []): MappingSet {
  const files = readMappingFiles(path);
  if (files.problems.length) {
    throw new MappingSetError(files.problems);
  }
  return loadMappingSet(mappingSources(files), builtIn);
}

/**
 * The dictionary files a mapping's code maps name, when it parses and they are plain `.csv` file
 * names (anything else is left for loadMappingSet to report, with its place in the mapping).
 */
export function dictionaryNames(mappingText: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(mappingText);
  } catch {
    return [];
  }
  if (!isPlainObject(json) || !isPlainObject(json.codes)) {
    return [];
  }
  return Object.values(json.codes).flatMap((decl) =>
    isPlainObject(decl) && typeof decl.file === 'string' && /\.csv$/i.test(decl.file) && basename(decl.file) === decl.file ? [decl.file] : []
  );
}

function readFile(path: string, name: string, problems: MappingProblem[]): MappingFileOnDisk | undefined {
  try {
    return { name, path, text: stripBom(readFileSync(path, 'utf8')) };
  } catch (err) {
    problems.push({ file: path, at: '', message: describeFsError(err) });
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function describeFsError(err: unknown): string {
  const code = (err as { code?: string } | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'not readable (permission denied)';
    case 'EISDIR':
      return 'is a folder, not a file';
    default:
      return `could not be read (${code ?? (err as Error).message})`;
  }
}
