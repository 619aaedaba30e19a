import { normalizeErrorString } from '@medplum/core';
import type { Attachment, CodeableConcept, DocumentReference, Library, Task } from '@medplum/fhirtypes';
import { OutOfTimeError } from '../execute/quota';
import { statusOf } from '../execute/server-link';
import { tokenParam } from '../fhir/search-values';
import { binaryIdOf, DownloadError, downloadBinary } from '../input/download';
import type { BotCall } from '../input/event';
import { BotInputError } from '../input/event';
import type { MappingFileSource, MappingSet } from '../mapping/load';
import { loadMappingSet, MAPPING_SUFFIX, PROFILE_MANIFEST } from '../mapping/load';
import type { MappingProblem } from '../mapping/problems';
import { MappingSetError } from '../mapping/problems';
import { BUILT_IN_TABLES } from '../profiles';
import type { JobContext } from './context';
import { recordNewUploads, uploadTask } from './discovery';
import type { SweepResult, UploadEventResult } from './scheduler';
import {
  changedTask,
  isClaimable,
  isFinished,
  JOB,
  listPendingTasks,
  LostClaimError,
  putTaskIfVersion,
  taskInput,
  taskTable,
  uploadsOf,
} from './task-ledger';
import type { UploadJobResult } from './upload-job';

/**
 * Mappings stored in the Medplum project, read by the bot at the start of every invocation, so
 * that editing one changes the next import without a new build or deploy.
 *
 * One `Library` per mapping file (`npm run setup -- --mapping <folder>` writes them):
 * - `identifier` `urn:medplum-csv-import:mapping|<table name>`, `name` the table name, `status`
 *   `active` (used) or `retired` (kept, not used), `type` asset-collection;
 * - `content[0]`: the mapping (`*.mapping.json`) as an attachment whose `url` names a Binary of
 *   this Medplum (`Binary/<id>`; the app's storage URLs work too) and whose `title` is the file name;
 * - `content[1..]`: the dictionary CSVs its code maps name and the set's `profile.json`, each titled
 *   with its file name. A file several mappings use (profile.json, a shared dictionary) is attached
 *   to each of them and must have the same content everywhere.
 *
 * When the project has active mapping Libraries the bot imports with exactly them (plus the
 * built-in tables their profile.json includes); when it has none, or the bot may not read
 * Libraries, with the built-in default profile. Stored mappings are treated as untrusted input:
 * bytes are read only through downloadBinary (this Medplum's Binaries, size-limited), and any
 * problem (a file too large or not UTF-8, bad JSON, a MappingSetError) makes the invocation refuse
 * its work with the problems named, file and JSON pointer, in every upload's Task.
 */
export const STORED_MAPPINGS = {
  identifierSystem: 'urn:medplum-csv-import:mapping',
  /** `DocumentReference.type.coding` with this system names the mapping (table) an upload is imported with. */
  tableSystem: JOB.uploadTableSystem,
  libraryType: {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/library-type', code: 'asset-collection', display: 'Asset Collection' }],
  } satisfies CodeableConcept,
  /** More active mapping Libraries than this is refused (as a set gone wrong, not read). */
  maxLibraries: 200,
  maxFilesPerLibrary: 50,
  /** One stored file (a mapping, a dictionary CSV, profile.json). */
  maxFileBytes: 10 * 1024 * 1024,
  /** Every stored file together. */
  maxSetBytes: 50 * 1024 * 1024,
} as const;

/** Problems listed in a message (a Task's statusReason); the count says how many more. */
const MAX_LISTED_PROBLEMS = 10;
const TABLE_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
/** A plain file name: no folders, no control characters. */
const FILE_NAME = /^[^\\/\u0000-\u001f\u007f]{1,200}$/;
const NO_CACHE = { cache: 'no-cache', maxRetries: 0 } as const;

export type StoredMappings =
  /** Nothing stored (or not readable by the bot): the built-in default profile is used. */
  | { kind: 'none'; reason: string }
  | { kind: 'stored'; set: MappingSet; files: MappingFileSource[]; libraries: StoredMappingLibrary[] }
  | BrokenMappings
  | UnavailableMappings;

/** The server would not let them be read in time (rate limits, failures beyond the retries): this run does nothing. */
export interface UnavailableMappings {
  kind: 'unavailable';
  message: string;
}

export interface BrokenMappings {
  kind: 'broken';
  problems: MappingProblem[];
  /** What every refused upload's Task says. */
  message: string;
}

export interface StoredMappingLibrary {
  /** `Library/<id>` */
  reference: string;
  table: string;
  /** Its files' names, content[0] (the mapping) first. */
  files: string[];
}

/** The table name a mapping Library is identified by. */
export function libraryTable(library: Library): string | undefined {
  return library.identifier?.find((i) => i.system === STORED_MAPPINGS.identifierSystem)?.value;
}

/** The active mapping Libraries of the project (at most maxLibraries + 1, to tell "too many"). */
export async function searchActiveMappingLibraries(context: JobContext): Promise<Library[]> {
  return context.retrier.run('reading the stored mappings', () =>
    context.medplum.searchResources(
      'Library',
      { identifier: tokenParam(STORED_MAPPINGS.identifierSystem, ''), status: 'active', _count: String(STORED_MAPPINGS.maxLibraries + 1) },
      NO_CACHE
    )
  );
}

/**
 * The project's stored mappings, loaded once for this invocation: searched, downloaded and
 * checked within the invocation's deadline (the context's retrier). When the server does not let
 * them be read in time they are `unavailable` (the next run tries again); problems with the
 * mappings themselves make them `broken`.
 */
export async function loadStoredMappings(context: JobContext): Promise<StoredMappings> {
  try {
    let libraries: Library[];
    try {
      libraries = await searchActiveMappingLibraries(context);
    } catch (err) {
      const status = statusOf(err);
      if (status === 401 || status === 403) {
        const reason = `the bot may not read Library resources (${status}): the built-in mappings are used`;
        context.log(reason);
        return { kind: 'none', reason };
      }
      throw err;
    }
    if (libraries.length === 0) {
      return { kind: 'none', reason: 'no active stored mappings: the built-in mappings are used' };
    }
    return await readLibraries(context, libraries);
  } catch (err) {
    // Rate limits, server or network failures beyond the retries, the deadline: nothing is imported
    // without the project's mappings, and nothing is failed for it either.
    const message = `could not read the stored mappings (${normalizeErrorString(err)})`;
    context.log(`${message}; nothing is imported in this run`);
    return { kind: 'unavailable', message };
  }
}

interface ContentEntry {
  label: string;
  at: string;
  title: string;
  binaryId: string;
  /** content[0] of its Library: the mapping. */
  mapping: boolean;
  table: string;
}

async function readLibraries(context: JobContext, found: Library[]): Promise<StoredMappings> {
  const problems: MappingProblem[] = [];
  const problem = (file: string, at: string, message: string): void => {
    problems.push({ file, at, message });
  };
  if (found.length > STORED_MAPPINGS.maxLibraries) {
    problem('', '', `the project has more than ${STORED_MAPPINGS.maxLibraries} active mapping Libraries; retire the ones not in use`);
    return broken(problems);
  }
  const libraries = [...found].sort((a, b) => (libraryTable(a) ?? '').localeCompare(libraryTable(b) ?? '') || (a.id ?? '').localeCompare(b.id ?? ''));
  const entries: ContentEntry[] = [];
  const owners = new Map<string, string>();
  const described: StoredMappingLibrary[] = [];
  for (const library of libraries) {
    const reference = `Library/${library.id}`;
    const table = libraryTable(library) ?? '';
    const label = table ? `${reference} (${table})` : reference;
    if (!TABLE_NAME.test(table)) {
      problem(label, '/identifier', `needs an identifier ${STORED_MAPPINGS.identifierSystem}|<table name> (lower-case letters, digits, _ and -)`);
    } else if (owners.has(table)) {
      problem(label, '/identifier', `${owners.get(table)} is also the active mapping '${table}': retire one of them`);
    } else {
      owners.set(table, reference);
    }
    const content: Attachment[] = Array.isArray(library.content) ? library.content : [];
    if (content.length === 0) {
      problem(label, '/content', `has no content: content[0] must be the mapping (*${MAPPING_SUFFIX})`);
    }
    if (content.length > STORED_MAPPINGS.maxFilesPerLibrary) {
      problem(label, '/content', `has ${content.length} files, more than ${STORED_MAPPINGS.maxFilesPerLibrary}`);
      continue;
    }
    const files: string[] = [];
    for (const [index, attachment] of content.entries()) {
      const at = `/content/${index}`;
      const title = typeof attachment?.title === 'string' ? attachment.title.trim() : '';
      if (!FILE_NAME.test(title)) {
        problem(label, `${at}/title`, 'the title must be the file name (e.g. patients.mapping.json)');
        continue;
      }
      const mapping = index === 0;
      if (mapping && !title.endsWith(MAPPING_SUFFIX)) {
        problem(label, `${at}/title`, `content[0] must be the mapping: its title ends in ${MAPPING_SUFFIX} (not ${title})`);
        continue;
      }
      if (!mapping && !(/\.csv$/i.test(title) || title === PROFILE_MANIFEST)) {
        problem(label, `${at}/title`, `${title}: besides the mapping (content[0]) a Library holds only dictionary CSVs (*.csv) and ${PROFILE_MANIFEST}`);
        continue;
      }
      let binaryId: string;
      try {
        if (typeof attachment.url !== 'string' || !attachment.url) {
          throw new DownloadError('not-from-this-server', 'the attachment has no url: the file must be a Binary of this Medplum');
        }
        binaryId = binaryIdOf(attachment.url, context.trusted);
      } catch (err) {
        problem(label, `${at}/url`, `${title}: ${err instanceof DownloadError ? err.message : normalizeErrorString(err)}`);
        continue;
      }
      files.push(title);
      entries.push({ label, at, title, binaryId, mapping, table });
    }
    described.push({ reference, table, files });
  }
  if (problems.length) {
    return broken(problems);
  }

  const texts = await downloadFiles(context, entries, problems);
  if (problems.length) {
    return broken(problems);
  }

  // One content per file name across the set: a file attached to several Libraries is one file.
  const files = new Map<string, { text: string; where: ContentEntry[] }>();
  for (const entry of entries) {
    const text = texts.get(entry.binaryId) as string;
    const same = files.get(entry.title);
    if (!same) {
      files.set(entry.title, { text, where: [entry] });
    } else if (same.where[0].mapping || entry.mapping) {
      problem(entry.label, `${entry.at}/title`, `${same.where[0].label} also holds ${entry.title}: each mapping file belongs to one Library`);
    } else if (same.text !== text) {
      problem(
        entry.label,
        entry.at,
        `${entry.title} differs from the ${entry.title} of ${same.where[0].label}: a file of the set has one content wherever it is attached`
      );
    } else {
      same.where.push(entry);
    }
  }
  for (const entry of entries.filter((e) => e.mapping)) {
    const name = declaredName(files.get(entry.title)?.text ?? '');
    if (name !== undefined && name !== entry.table) {
      problem(`${entry.title} (${entry.label.split(' ')[0]})`, '/name', `is '${name}', but the Library's identifier says '${entry.table}': they must agree`);
    }
  }
  if (problems.length) {
    return broken(problems);
  }

  const sources: MappingFileSource[] = [...files].map(([name, file]) => ({ name, text: file.text }));
  try {
    const set = loadSet(sources);
    context.log(`stored mappings: ${described.map((l) => `${l.table} (${l.reference})`).join(', ')}`);
    return { kind: 'stored', set, files: sources, libraries: described };
  } catch (err) {
    const where = (name: string): string => {
      const file = files.get(name);
      return file ? `${name} (${file.where.map((e) => e.label.split(' ')[0]).join(', ')})` : name;
    };
    if (err instanceof MappingSetError) {
      return broken(err.problems.map((p) => ({ ...p, file: where(p.file) })));
    }
    return broken([{ file: '', at: '', message: `could not be loaded: ${normalizeErrorString(err)}` }]);
  }
}

/** Each distinct Binary once, within the set's size limit; problems are recorded on every entry naming it. */
async function downloadFiles(context: JobContext, entries: readonly ContentEntry[], problems: MappingProblem[]): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  let total = 0;
  for (const entry of entries) {
    if (texts.has(entry.binaryId) || problems.some((p) => p.file === entry.label && p.at === entry.at)) {
      continue;
    }
    const fail = (message: string): void => {
      for (const e of entries.filter((x) => x.binaryId === entry.binaryId)) {
        problems.push({ file: e.label, at: e.at, message: `${e.title}: ${message}` });
      }
    };
    const left = STORED_MAPPINGS.maxSetBytes - total;
    if (left <= 0) {
      fail(`the stored mapping files together are larger than ${mb(STORED_MAPPINGS.maxSetBytes)}`);
      break;
    }
    const maxBytes = Math.min(STORED_MAPPINGS.maxFileBytes, left);
    let bytes: Uint8Array;
    try {
      bytes = await downloadBinary(context.link, context.trusted, entry.binaryId, entry.title, { retrier: context.retrier, maxBytes });
    } catch (err) {
      if (!(err instanceof DownloadError)) {
        throw err; // server failures and the deadline: the next run tries again
      }
      fail(
        err.reason !== 'too-large'
          ? err.message
          : maxBytes < STORED_MAPPINGS.maxFileBytes
            ? `the stored mapping files together are larger than ${mb(STORED_MAPPINGS.maxSetBytes)}`
            : `the file is larger than the ${mb(STORED_MAPPINGS.maxFileBytes)} limit for a stored mapping file`
      );
      continue;
    }
    total += bytes.length;
    try {
      // A UTF-8 byte-order mark is dropped (ignoreBOM false).
      texts.set(entry.binaryId, new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes));
    } catch {
      fail('the file is not UTF-8 text');
    }
  }
  return texts;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}

function declaredName(text: string): string | undefined {
  try {
    const json: unknown = JSON.parse(text);
    const name = json && typeof json === 'object' && !Array.isArray(json) ? (json as { name?: unknown }).name : undefined;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined; // loadMappingSet reports it, with the file
  }
}

/**
 * The last set loaded in this process, by its files' content: a warm runtime (AWS Lambda) whose
 * mappings did not change skips compiling them again. Each invocation still reads them.
 */
let lastLoaded: { sources: MappingFileSource[]; set: MappingSet } | undefined;

function loadSet(sources: MappingFileSource[]): MappingSet {
  const same =
    lastLoaded?.sources.length === sources.length &&
    lastLoaded.sources.every((s, i) => s.name === sources[i].name && s.text === sources[i].text);
  if (same && lastLoaded) {
    return lastLoaded.set;
  }
  const set = loadMappingSet(sources, BUILT_IN_TABLES);
  lastLoaded = { sources, set };
  return set;
}

function broken(problems: MappingProblem[]): BrokenMappings {
  return { kind: 'broken', problems, message: brokenMappingsMessage(problems) };
}

export function brokenMappingsMessage(problems: readonly MappingProblem[]): string {
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => [p.file, p.at].filter(Boolean).join(' ') + (p.file || p.at ? ': ' : '') + p.message);
  const more = problems.length > MAX_LISTED_PROBLEMS ? `; and ${problems.length - MAX_LISTED_PROBLEMS} more` : '';
  return (
    `the stored mappings are broken, so nothing was imported: ${listed.join('; ')}${more}. ` +
    `Fix the project's mapping Libraries (identifier ${STORED_MAPPINGS.identifierSystem}) or run npm run setup -- --mapping <folder>, then upload the file again`
  );
}

/**
 * An invocation without usable mappings imports nothing.
 * - Broken: a direct import is refused with the problems; every upload it would have run (the
 *   event's, or for a sweep every pending one and every new one) gets its Task failed with them.
 *   Tasks another invocation holds are left to it.
 * - Unavailable (the server did not let them be read in time): nothing is changed; a direct
 *   import fails, an upload is left for the next sweep.
 */
export async function runWithoutMappings(
  context: JobContext,
  call: BotCall,
  mappings: BrokenMappings | UnavailableMappings
): Promise<UploadEventResult | SweepResult> {
  if (mappings.kind === 'unavailable') {
    return postpone(context, call, mappings.message);
  }
  context.log(mappings.message);
  if (call.kind === 'import') {
    throw new BotInputError(mappings.message);
  }
  if (call.kind === 'sweep') {
    return failPendingUploads(context, mappings);
  }
  const document = call.kind === 'upload' ? call.document : await readDocument(context, call.reference);
  const uploads = uploadsOf(document, context.trusted);
  if (uploads.length === 0) {
    return { outcome: 'ignored', message: `DocumentReference/${document.id} has no current CSV attachment with a URL (yet)` };
  }
  const jobs: UploadJobResult[] = [];
  try {
    for (const upload of uploads) {
      const task = await uploadTask(context, upload, call.table);
      jobs.push(await failTask(context, task, upload.fileName, mappings));
    }
  } catch (err) {
    if (!(err instanceof OutOfTimeError)) {
      throw err;
    }
    jobs.push({ task: '', file: uploads[jobs.length].fileName, outcome: 'interrupted', message: `${err.message}; the next sweep records the upload` });
  }
  return jobs.length === 1 ? jobs[0] : { outcome: 'several', jobs };
}

function postpone(context: JobContext, call: BotCall, message: string): UploadEventResult | SweepResult {
  switch (call.kind) {
    case 'import':
      throw new Error(`${message}; try again`);
    case 'sweep':
      // Nothing was looked at: how many uploads are pending is not known (none is counted).
      return Object.assign({ jobs: [], pending: 0 }, { message: `${message}; the next run tries again` });
    case 'upload-reference':
      return { task: '', file: call.reference, outcome: 'interrupted', message: `${message}; the next sweep imports the upload` };
    case 'upload': {
      const jobs: UploadJobResult[] = uploadsOf(call.document, context.trusted).map((upload) => ({
        task: '',
        file: upload.fileName,
        outcome: 'interrupted',
        message: `${message}; the next sweep imports the upload`,
      }));
      if (jobs.length === 0) {
        return { outcome: 'ignored', message: `DocumentReference/${call.document.id} has no current CSV attachment with a URL (yet)` };
      }
      return jobs.length === 1 ? jobs[0] : { outcome: 'several', jobs };
    }
  }
}

async function failPendingUploads(context: JobContext, mappings: BrokenMappings): Promise<SweepResult> {
  const jobs: UploadJobResult[] = [];
  let left = 0;
  try {
    await recordNewUploads(context);
    const pending = await context.retrier.run('listing pending imports', () => listPendingTasks(context.medplum));
    left = pending.length;
    for (const task of pending) {
      const job = await failTask(context, task, taskInput(task, JOB.inputs.file) ?? task.focus?.display ?? `Task/${task.id}`, mappings);
      jobs.push(job);
      left -= job.outcome === 'failed' ? 1 : 0;
    }
  } catch (err) {
    if (!(err instanceof OutOfTimeError)) {
      throw err;
    }
    context.log(`sweep stopped: ${err.message}`);
  }
  return { jobs, pending: left };
}

async function failTask(context: JobContext, task: Task, file: string, mappings: BrokenMappings): Promise<UploadJobResult> {
  const reference = `Task/${task.id}`;
  const base = { task: reference, file, table: taskTable(task) };
  if (isFinished(task)) {
    return { ...base, outcome: 'already-done', message: `already ${task.status}` };
  }
  if (!isClaimable(task, context.clock.now())) {
    return { ...base, outcome: 'busy', message: 'another invocation is importing it' };
  }
  const reason = `${file}: ${mappings.message}`;
  const next = changedTask(task, {
    status: 'failed',
    businessStatus: 'not imported: the stored mappings are broken',
    statusReason: reason,
    error: reason,
    leaseUntil: 0,
  });
  try {
    await context.retrier.run(`updating ${reference}`, () => putTaskIfVersion(context.medplum, task.meta?.versionId, next, reference));
  } catch (err) {
    if (err instanceof LostClaimError) {
      return { ...base, outcome: 'busy', message: 'another invocation took it first' };
    }
    if (err instanceof OutOfTimeError) {
      throw err;
    }
    return { ...base, outcome: 'interrupted', message: `could not record the failure: ${normalizeErrorString(err)}` };
  }
  return { ...base, outcome: 'failed', message: reason };
}

async function readDocument(context: JobContext, reference: string): Promise<DocumentReference> {
  try {
    return await context.retrier.run(`reading ${reference}`, () =>
      context.medplum.readReference<DocumentReference>({ reference }, NO_CACHE)
    );
  } catch (err) {
    throw new BotInputError(`Could not read ${reference}: ${normalizeErrorString(err)}`);
  }
}
