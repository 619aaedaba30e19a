import type { MedplumClient, WithId } from '@medplum/core';
import { getReferenceString } from '@medplum/core';
import type { Attachment, Library } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { JobContext } from '../lib/jobs/context';
import { createJobContext } from '../lib/jobs/context';
import { libraryTable, loadStoredMappings, STORED_MAPPINGS } from '../lib/jobs/stored-mappings';
import { binaryIdOf, downloadBinary } from '../lib/input/download';
import type { MappingFileSource, MappingSet } from '../lib/mapping/load';
import { loadMappingSet, MAPPING_SUFFIX, PROFILE_MANIFEST } from '../lib/mapping/load';
import { describeProblem, MappingSetError } from '../lib/mapping/problems';
import { BUILT_IN_TABLES, profileNames } from '../lib/profiles';
import { builtInProfileFiles } from '../lib/profiles/builtin';
import { resolveSettings } from '../lib/settings';
import type { SetupAction } from './setup-project';

/**
 * The mapping set `npm run setup` stores in the project for the bot (see STORED_MAPPINGS in
 * src/lib/jobs/stored-mappings.ts for the layout the bot reads): one Library per mapping, its file
 * and the files it needs as Binaries. Storing is idempotent: a Library is written only when what
 * it holds differs from the set's files (compared byte for byte with the stored Binaries), and
 * mappings no longer in the set are retired, not deleted.
 */

/** A mapping set read from a folder or a built-in profile, checked, ready to store. */
export interface PlannedMappings {
  /** `profile synthea-csv`, or the folder. */
  description: string;
  /** The set's files, as the bot will load them: mappings, the dictionaries they name, profile.json. */
  files: MappingFileSource[];
  set: MappingSet;
}

/**
 * Reads and checks a mapping set: `folder` (its `*.mapping.json`, its `profile.json`, and the
 * dictionary CSVs its mappings name) or the built-in `profile`. Every problem loadMappingSet finds
 * is thrown at once, each naming the file and the place, before anything is written.
 */
export function planMappings(source: { folder: string } | { profile: string }): PlannedMappings {
  let files: MappingFileSource[];
  let description: string;
  if ('folder' in source) {
    files = readMappingFolder(source.folder);
    description = source.folder;
  } else {
    const profile = builtInProfileFiles()[source.profile];
    if (!profile) {
      throw new Error(`unknown profile '${source.profile}' (there are ${profileNames().join(', ')})`);
    }
    files = setFiles(profile);
    description = `profile ${source.profile}`;
  }
  for (const file of files) {
    const bytes = Buffer.byteLength(file.text, 'utf8');
    if (bytes > STORED_MAPPINGS.maxFileBytes) {
      throw new Error(`${file.name} is ${bytes} bytes, over the ${STORED_MAPPINGS.maxFileBytes}-byte limit the bot reads for a stored mapping file`);
    }
  }
  const total = files.reduce((sum, f) => sum + Buffer.byteLength(f.text, 'utf8'), 0);
  if (total > STORED_MAPPINGS.maxSetBytes) {
    throw new Error(`the mapping set is ${total} bytes, over the ${STORED_MAPPINGS.maxSetBytes}-byte limit the bot reads`);
  }
  try {
    return { description, files, set: loadMappingSet(files, BUILT_IN_TABLES) };
  } catch (err) {
    if (err instanceof MappingSetError) {
      const where = 'folder' in source ? source.folder : `profiles/${source.profile}`;
      throw new Error(`The mappings in ${where} have ${err.problems.length} problem(s):\n${err.problems.map((p) => `  ${describeProblem(p)}`).join('\n')}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** A folder's mapping set: `*.mapping.json`, `profile.json`, and the dictionary CSVs the mappings name. */
export function readMappingFolder(folder: string): MappingFileSource[] {
  let names: string[];
  try {
    if (!statSync(folder).isDirectory()) {
      throw new Error('not a folder');
    }
    names = readdirSync(folder).sort();
  } catch (err) {
    throw new Error(`Could not read the mapping folder ${folder}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message}`, {
      cause: err,
    });
  }
  const read = (name: string): MappingFileSource => ({ name, text: stripBom(readFileSync(join(folder, name), 'utf8')) });
  return setFiles(names.filter((n) => n.endsWith(MAPPING_SUFFIX) || n === PROFILE_MANIFEST || /\.csv$/i.test(n)).map(read));
}

/** The files of a set that are stored: mappings, profile.json, and only the CSVs a mapping names. */
function setFiles(files: readonly MappingFileSource[]): MappingFileSource[] {
  const mappings = files.filter((f) => f.name.endsWith(MAPPING_SUFFIX));
  const named = new Set(mappings.flatMap((m) => dictionaryNames(m.text)));
  return [
    ...mappings,
    ...files.filter((f) => /\.csv$/i.test(f.name) && named.has(f.name)),
    ...files.filter((f) => f.name === PROFILE_MANIFEST),
  ].map(({ name, text }) => ({ name, text }));
}

/** The dictionary files a mapping's code maps name (`codes.<name>.file`), when it parses. */
export function dictionaryNames(mappingText: string): string[] {
  try {
    const json = JSON.parse(mappingText) as { codes?: Record<string, { file?: unknown }> };
    return Object.values(json?.codes ?? {}).flatMap((code) => (typeof code?.file === 'string' ? [code.file] : []));
  } catch {
    return [];
  }
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** A job context for setup's own downloads (this Medplum's Binaries only, with retries). */
function setupContext(medplum: MedplumClient): JobContext {
  return createJobContext(medplum, { budgetMs: 10 * 60_000, settings: resolveSettings() });
}

/**
 * The mappings the project already stores (for a setup run without --mapping or --profile, whose
 * policy must still cover them); undefined when it stores none. Broken ones stop setup.
 */
export async function storedMappingsInProject(medplum: MedplumClient): Promise<PlannedMappings | undefined> {
  const stored = await loadStoredMappings(setupContext(medplum));
  if (stored.kind === 'none') {
    return undefined;
  }
  if (stored.kind === 'unavailable') {
    throw new Error(`Could not read the project's stored mappings: ${stored.message}`);
  }
  if (stored.kind === 'broken') {
    throw new Error(`The project's stored mappings are broken; fix them or run setup with --mapping <folder> or --profile <name>: ${stored.message}`);
  }
  return { description: 'the mappings stored in the project', files: stored.files, set: stored.set };
}

export interface StoredMappingsResult {
  /** Table name -> `Library/<id>` of every mapping of the set. */
  libraries: Record<string, string>;
  /** Libraries retired: mappings no longer in the set, and duplicates. */
  retired: string[];
}

/** The Library fields setup manages; others (version, notes a user added) are kept. */
type ManagedFields = Pick<Library, 'name' | 'title' | 'status' | 'type' | 'description' | 'content'>;

const JSON_CONTENT_TYPE = 'application/json';
/**
 * What the JSON files' Binaries are uploaded as. Medplum stores the bytes of any Binary upload
 * as they are (only a Binary resource sent as application/fhir+json is taken as a resource), but
 * the local Medplum used in tests parses every JSON-typed Binary upload as a FHIR resource; plain
 * text is stored as bytes by both. The Library attachment still says application/json.
 */
const JSON_BINARY_CONTENT_TYPE = 'text/plain; charset=utf-8';

/**
 * Stores the set in the project: creates or updates one Library per mapping (active), and retires
 * the mapping Libraries of tables no longer in the set. Running it again with the same files
 * writes nothing.
 */
export async function ensureMappingLibraries(
  medplum: MedplumClient,
  planned: PlannedMappings,
  record: (action: SetupAction) => void,
  warnings: string[]
): Promise<StoredMappingsResult> {
  const context = setupContext(medplum);
  const existing = await medplum.searchResources(
    'Library',
    { identifier: `${STORED_MAPPINGS.identifierSystem}|`, _count: '1000' },
    { cache: 'no-cache' }
  );
  const byTable = new Map<string, WithId<Library>[]>();
  for (const library of [...existing].sort((a, b) => (a.meta?.lastUpdated ?? '').localeCompare(b.meta?.lastUpdated ?? ''))) {
    const table = libraryTable(library) ?? '';
    byTable.set(table, [...(byTable.get(table) ?? []), library]);
  }
  const files = new Map(planned.files.map((f) => [f.name, f.text]));
  const attachments = new AttachmentStore(medplum, context);
  const result: StoredMappingsResult = { libraries: {}, retired: [] };

  const mappings = [...planned.set.mappings].sort((a, b) => a.table.name.localeCompare(b.table.name));
  for (const mapping of mappings) {
    const table = mapping.table.name;
    const [current, ...duplicates] = (byTable.get(table) ?? []).sort((a, b) => Number(b.status === 'active') - Number(a.status === 'active'));
    const text = files.get(mapping.file) as string;
    const names = [
      mapping.file,
      ...[...new Set(dictionaryNames(text))].filter((n) => files.has(n)),
      ...(files.has(PROFILE_MANIFEST) ? [PROFILE_MANIFEST] : []),
    ];
    const content: Attachment[] = [];
    for (const name of names) {
      content.push(await attachments.forFile(name, files.get(name) as string, current));
    }
    const wanted: ManagedFields = {
      name: table,
      title: `CSV import mapping: ${table}`,
      status: 'active',
      type: STORED_MAPPINGS.libraryType,
      ...(mapping.table.description ? { description: mapping.table.description } : {}),
      content,
    };
    const description = `Library '${table}' (mapping ${mapping.file})`;
    if (!current) {
      const created = await medplum.createResource<Library>({
        resourceType: 'Library',
        identifier: [{ system: STORED_MAPPINGS.identifierSystem, value: table }],
        ...wanted,
      });
      record({ kind: 'created', resource: getReferenceString(created), description, changes: [`content: ${names.join(', ')}`] });
      result.libraries[table] = getReferenceString(created);
    } else {
      const changes = managedChanges(current, wanted);
      if (changes.length) {
        const next: Library = { ...current, ...wanted };
        if (!wanted.description) {
          delete next.description;
        }
        await medplum.updateResource(next);
      }
      record({ kind: changes.length ? 'updated' : 'kept', resource: getReferenceString(current), description, changes });
      result.libraries[table] = getReferenceString(current);
    }
    for (const duplicate of duplicates) {
      warnings.push(`${getReferenceString(duplicate)} is another mapping Library of '${table}'; it is retired (the bot reads one Library per table)`);
      await retire(medplum, duplicate, record, result);
    }
  }

  const wantedTables = new Set(mappings.map((m) => m.table.name));
  for (const [table, libraries] of [...byTable].sort(([a], [b]) => a.localeCompare(b))) {
    if (!wantedTables.has(table)) {
      for (const library of libraries) {
        await retire(medplum, library, record, result);
      }
    }
  }
  return result;
}

async function retire(
  medplum: MedplumClient,
  library: WithId<Library>,
  record: (action: SetupAction) => void,
  result: StoredMappingsResult
): Promise<void> {
  if (library.status === 'retired') {
    return;
  }
  await medplum.updateResource({ ...library, status: 'retired' });
  const table = libraryTable(library) ?? '';
  record({
    kind: 'updated',
    resource: getReferenceString(library),
    description: `Library '${table}' (mapping not in the set)`,
    changes: [`status ${library.status} -> retired`],
  });
  result.retired.push(getReferenceString(library));
}

function managedChanges(current: Library, wanted: ManagedFields): string[] {
  const changes: string[] = [];
  for (const field of ['name', 'title', 'status', 'type', 'description'] as const) {
    if (!sameJson(current[field], wanted[field])) {
      changes.push(field === 'status' ? `status ${current.status} -> ${wanted.status}` : field);
    }
  }
  if (!sameJson(current.content, wanted.content)) {
    const before = new Map((current.content ?? []).map((a) => [a.title, a]));
    const changed = (wanted.content ?? []).filter((a) => !sameJson(before.get(a.title), a)).map((a) => a.title);
    const removed = [...before.keys()].filter((t) => !(wanted.content ?? []).some((a) => a.title === t));
    changes.push(`content: ${[...changed.map((t) => `${t} new`), ...removed.map((t) => `${t} removed`)].join(', ') || 'order'}`);
  }
  return changes;
}

/**
 * The attachments of the set's files: a Library's own attachment when its Binary already holds
 * the file's bytes, else one stored earlier in this run (files shared by several mappings are
 * uploaded once), else a new Binary.
 */
class AttachmentStore {
  private readonly stored = new Map<string, Attachment>();
  /** Binary id -> its text (undefined: not readable). */
  private readonly downloaded = new Map<string, string | undefined>();

  constructor(
    private readonly medplum: MedplumClient,
    private readonly context: JobContext
  ) {}

  async forFile(name: string, text: string, library: Library | undefined): Promise<Attachment> {
    const own = library?.content?.find((a) => a?.title === name);
    if (own && (await this.holds(own, text))) {
      this.stored.set(name, this.stored.get(name) ?? own);
      return own;
    }
    const shared = this.stored.get(name);
    if (shared) {
      return shared;
    }
    const json = name.endsWith('.json');
    const binary = await this.medplum.createBinary({
      data: text,
      contentType: json ? JSON_BINARY_CONTENT_TYPE : 'text/csv',
      filename: name,
    });
    const bytes = Buffer.from(text, 'utf8');
    const attachment: Attachment = {
      contentType: json ? JSON_CONTENT_TYPE : 'text/csv',
      url: `Binary/${binary.id}`,
      title: name,
      size: bytes.length,
      hash: createHash('sha1').update(bytes).digest('base64'),
    };
    this.stored.set(name, attachment);
    this.downloaded.set(binary.id, text);
    return attachment;
  }

  private async holds(attachment: Attachment, text: string): Promise<boolean> {
    let id: string;
    try {
      id = binaryIdOf(attachment.url ?? '', this.context.trusted);
    } catch {
      return false; // not a Binary of this Medplum: replaced
    }
    if (!this.downloaded.has(id)) {
      try {
        const bytes = await downloadBinary(this.context.link, this.context.trusted, id, attachment.title ?? id, {
          retrier: this.context.retrier,
          maxBytes: STORED_MAPPINGS.maxFileBytes,
        });
        this.downloaded.set(id, new TextDecoder().decode(bytes));
      } catch {
        this.downloaded.set(id, undefined); // missing, deleted, too large: replaced
      }
    }
    return this.downloaded.get(id) === text;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalize(a), normalize(b));
}

function normalize(value: unknown): unknown {
  if (value === undefined) {
    return undefined;
  }
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]))
        : v;
  return sort(JSON.parse(JSON.stringify(value)));
}
