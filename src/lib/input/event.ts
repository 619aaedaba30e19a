import type { BotEvent } from '@medplum/core';
import type { DocumentReference, ProjectSetting } from '@medplum/fhirtypes';
import type { ImportSettings } from '../settings';
import { resolveSettings } from '../settings';

/** Largest CSV a bot invocation accepts; bigger migrations go through the command line. */
export const MAX_CSV_BYTES = 50 * 1024 * 1024;

/** The bot was called in a way it cannot act on; the message says how to call it. */
export class BotInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BotInputError';
  }
}

export const HOW_TO_CALL =
  'Send the CSV as text/plain, as JSON { "csv": "<file text>", "table"?: "patients" }, ' +
  'or upload it and send JSON { "document": { "reference": "DocumentReference/<id>" } } (or "Binary/<id>").';

/** What a direct call does with the file: import it, or one of the runs that write nothing. */
export type DirectMode = 'import' | 'dry-run' | 'plan' | 'reconcile';

/** Options of a direct import ($execute with the file or a Binary). */
export interface DirectImport {
  table?: string;
  settings: ImportSettings;
  /**
   * dry-run: map and validate only; plan: look every row up and report what an import would do
   * now; reconcile: compare Medplum with the file by identifier. Only `import` writes resources.
   */
  mode: DirectMode;
}

/** Where the CSV of a direct import is. */
export type CsvSource =
  | { kind: 'text'; name: string; text: string }
  | { kind: 'binary'; binaryId: string; name: string }
  /** A dry run of an upload: its DocumentReference's CSV attachment, read without touching its Task. */
  | { kind: 'document'; reference: string; name: string };

/**
 * What a bot invocation asks for. The one place that reads a BotEvent's input:
 * - `upload`: a DocumentReference (a Subscription's event, or one posted to $execute): import its
 *   CSV attachments under their Tasks;
 * - `upload-reference`: $execute { document: { reference: "DocumentReference/<id>" } }: the same,
 *   once the DocumentReference is read;
 * - `sweep`: the cron schedule (its input is the Bot) or a continuation ({ "sweep": true }): find
 *   and run pending uploads;
 * - `import`: $execute with the CSV itself or a Binary: import it now and return its report.
 */
export type BotCall =
  | { kind: 'upload'; document: DocumentReference; table?: string }
  | { kind: 'upload-reference'; reference: string; table?: string }
  | { kind: 'sweep' }
  | { kind: 'import'; source: CsvSource; options: DirectImport };

interface JsonInput {
  csv?: unknown;
  document?: { reference?: unknown };
  sweep?: unknown;
  table?: unknown;
  /** A synonym of `table`: the mapping to import with. */
  mapping?: unknown;
  fileName?: unknown;
  dryRun?: unknown;
  plan?: unknown;
  reconcile?: unknown;
  identifierBase?: unknown;
  batchSize?: unknown;
  onConflict?: unknown;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Inputs that are import settings (see resolveSettings). */
const SETTING_INPUTS = ['identifierBase', 'batchSize', 'onConflict'] as const;

export function classifyBotCall(event: BotEvent): BotCall {
  const input = event.input as unknown;
  const secrets = event.secrets ?? {};

  if (typeof input === 'string') {
    return { kind: 'import', source: textSource('input.csv', input), options: directImport({}, secrets) };
  }
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new BotInputError(`No CSV in the bot input. ${HOW_TO_CALL}`);
  }

  const resourceType = (input as { resourceType?: unknown }).resourceType;
  if (resourceType === 'Bot') {
    return { kind: 'sweep' };
  }
  if (resourceType === 'DocumentReference') {
    return { kind: 'upload', document: input as DocumentReference };
  }
  if (resourceType === 'Binary') {
    const id = (input as { id?: unknown }).id;
    if (typeof id !== 'string' || !FHIR_ID.test(id)) {
      throw new BotInputError(`The Binary in the bot input has no valid id. ${HOW_TO_CALL}`);
    }
    return { kind: 'import', source: { kind: 'binary', binaryId: id, name: `Binary/${id}` }, options: directImport({}, secrets) };
  }
  if (resourceType !== undefined) {
    throw new BotInputError(`A ${String(resourceType)} is not a CSV upload. ${HOW_TO_CALL}`);
  }

  const json = input as JsonInput;
  if (json.sweep !== undefined) {
    if (json.sweep !== true) {
      throw new BotInputError('"sweep" must be true (a JSON boolean)');
    }
    return { kind: 'sweep' };
  }
  const options = directImport(json, secrets);
  if (json.csv !== undefined) {
    if (typeof json.csv !== 'string') {
      throw new BotInputError(`"csv" must be the file's text. ${HOW_TO_CALL}`);
    }
    const name = optionalString(json.fileName, 'fileName') ?? 'input.csv';
    return { kind: 'import', source: textSource(name, json.csv), options };
  }
  if (json.document !== undefined) {
    const reference = json.document?.reference;
    const match = typeof reference === 'string' ? /^(DocumentReference|Binary)\/([^/]+)$/.exec(reference) : null;
    if (!match || !FHIR_ID.test(match[2])) {
      throw new BotInputError(`"document.reference" must be "DocumentReference/<id>" or "Binary/<id>". ${HOW_TO_CALL}`);
    }
    if (match[1] === 'Binary') {
      return { kind: 'import', source: { kind: 'binary', binaryId: match[2], name: match[0] }, options };
    }
    if (options.mode !== 'import') {
      // A dry run, plan or reconciliation is not the upload's import: its Task is left alone.
      return { kind: 'import', source: { kind: 'document', reference: match[0], name: match[0] }, options };
    }
    // An upload's import may span several runs, each reading the project's secrets: settings
    // given here would apply to the first run only, so they are refused rather than dropped.
    const given = SETTING_INPUTS.filter((name) => json[name] !== undefined);
    if (given.length) {
      throw new BotInputError(
        `${given.map((n) => `"${n}"`).join(', ')}: an upload is imported under its Task with the project's secrets (IDENTIFIER_BASE, BATCH_SIZE, ON_CONFLICT); set them there, or send the file as "csv" or a Binary`
      );
    }
    return { kind: 'upload-reference', reference: match[0], table: options.table };
  }
  if (Object.keys(input).length === 0) {
    throw new BotInputError(
      'The bot input is empty. Medplum passes text/csv and application/octet-stream bodies to bots as {}, ' +
        `so the file never arrived. ${HOW_TO_CALL}`
    );
  }
  throw new BotInputError(`Unrecognised bot input (keys: ${Object.keys(input).join(', ')}). ${HOW_TO_CALL}`);
}

function directImport(json: JsonInput, secrets: Record<string, ProjectSetting>): DirectImport {
  let settings: ImportSettings;
  try {
    settings = resolveSettings(json, secrets);
  } catch (err) {
    throw new BotInputError((err as Error).message);
  }
  const table = optionalString(json.table, 'table');
  const mapping = optionalString(json.mapping, 'mapping');
  if (table !== undefined && mapping !== undefined && table !== mapping) {
    throw new BotInputError('"table" and "mapping" name the same thing: give one of them');
  }
  const modes = (['dryRun', 'plan', 'reconcile'] as const).filter((name) => strictBoolean(json[name], name));
  if (modes.length > 1) {
    throw new BotInputError(`${modes.map((m) => `"${m}"`).join(' and ')} do not go together: give one of them`);
  }
  const mode: DirectMode = modes[0] === 'dryRun' ? 'dry-run' : (modes[0] ?? 'import');
  return { table: table ?? mapping, settings, mode };
}

/** true or false as JSON booleans; "true", 1 and the like are refused rather than guessed. */
function strictBoolean(value: unknown, name: string): boolean {
  if (value === undefined) {
    return false;
  }
  if (typeof value !== 'boolean') {
    throw new BotInputError(`"${name}" must be true or false (a JSON boolean, not ${JSON.stringify(typeof value)})`);
  }
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'string' || !value.trim()) {
    throw new BotInputError(`"${name}" must be a non-empty string`);
  }
  return value.trim();
}

function textSource(name: string, text: string): CsvSource {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_CSV_BYTES) {
    throw new BotInputError(`${name}: ${tooLargeProblem(bytes)}`);
  }
  return { kind: 'text', name, text };
}

/**
 * Why a file is too large for the bot. `bytes` is the file's size, or with `stoppedReading` how
 * much was read before the limit stopped the download (the size is then unknown, only larger).
 */
export function tooLargeProblem(bytes: number, stoppedReading = false): string {
  const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
  const limit = `${mb(MAX_CSV_BYTES)} (${MAX_CSV_BYTES} bytes) limit for one bot run`;
  if (stoppedReading) {
    return `the file is larger than the ${limit} (the download was stopped there); import it with the command line instead`;
  }
  // Near the limit one decimal would read "50.0 MB, over the 50.0 MB limit": show the bytes too.
  const size = bytes - MAX_CSV_BYTES < 1024 * 1024 ? `${mb(bytes)} (${bytes} bytes)` : mb(bytes);
  return `the file is ${size}, over the ${limit}; import it with the command line instead`;
}
