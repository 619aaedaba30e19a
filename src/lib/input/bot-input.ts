import type { BotEvent, MedplumClient } from '@medplum/core';
import { normalizeErrorString } from '@medplum/core';
import type { Attachment, Binary, DocumentReference } from '@medplum/fhirtypes';
import type { CsvDocument } from '../csv/document';
import { csvFromText } from '../csv/document';
import type { ImportSettings } from '../settings';
import { resolveSettings } from '../settings';

/** Largest CSV a bot invocation accepts; bigger migrations go through the command line. */
export const MAX_CSV_BYTES = 50 * 1024 * 1024;

/** A bot invocation, resolved to the file to import and how. */
export interface ImportRequest {
  document: CsvDocument;
  table?: string;
  settings: ImportSettings;
  dryRun: boolean;
  /** Where the CSV came from: a DocumentReference or Binary reference, or 'input'. */
  source: string;
}

/** The bot was called in a way that carries no CSV; the message says how to call it. */
export class BotInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BotInputError';
  }
}

export const HOW_TO_CALL =
  'Send the CSV as text/plain, as JSON { "csv": "<file text>", "table"?: "patients" }, ' +
  'or upload it and send JSON { "document": { "reference": "DocumentReference/<id>" } } (or "Binary/<id>").';

interface JsonInput {
  csv?: unknown;
  document?: { reference?: unknown };
  table?: unknown;
  fileName?: unknown;
  dryRun?: unknown;
  identifierBase?: unknown;
  batchSize?: unknown;
  encounterClassMap?: unknown;
}

/**
 * Accepts every way Medplum calls the bot: $execute with text/plain (the CSV itself), $execute
 * with JSON (the CSV or a reference to an upload), and a Subscription (the DocumentReference or
 * Binary that changed). text/csv and octet-stream bodies reach bots as {}: that gets an error
 * saying how to call instead.
 */
export async function resolveBotInput(medplum: MedplumClient, event: BotEvent): Promise<ImportRequest> {
  const input = event.input as unknown;
  const secrets = event.secrets ?? {};

  if (typeof input === 'string') {
    return {
      document: textDocument('input.csv', input),
      settings: resolveSettings({}, secrets),
      dryRun: false,
      source: 'input',
    };
  }
  if (!input || typeof input !== 'object') {
    throw new BotInputError(`No CSV in the bot input. ${HOW_TO_CALL}`);
  }

  const resource = input as { resourceType?: string };
  if (resource.resourceType === 'DocumentReference') {
    const doc = input as DocumentReference;
    return {
      document: await downloadDocumentReference(medplum, doc),
      settings: resolveSettings({}, secrets),
      dryRun: false,
      source: `DocumentReference/${doc.id}`,
    };
  }
  if (resource.resourceType === 'Binary') {
    const binary = input as Binary;
    return {
      document: await downloadCsv(medplum, `Binary/${binary.id}`, `Binary/${binary.id}`),
      settings: resolveSettings({}, secrets),
      dryRun: false,
      source: `Binary/${binary.id}`,
    };
  }
  if (resource.resourceType) {
    throw new BotInputError(`A ${resource.resourceType} is not a CSV upload. ${HOW_TO_CALL}`);
  }

  const json = input as JsonInput;
  const settings = resolveSettings(json, secrets);
  const table = optionalString(json.table, 'table');
  const dryRun = json.dryRun === true;
  if (typeof json.csv === 'string') {
    const name = optionalString(json.fileName, 'fileName') ?? 'input.csv';
    return { document: textDocument(name, json.csv), table, settings, dryRun, source: 'input' };
  }
  if (json.csv !== undefined) {
    throw new BotInputError(`"csv" must be the file's text. ${HOW_TO_CALL}`);
  }
  if (json.document !== undefined) {
    const reference = json.document?.reference;
    if (typeof reference !== 'string' || !/^(DocumentReference|Binary)\/[^/]+$/.test(reference)) {
      throw new BotInputError(`"document.reference" must be "DocumentReference/<id>" or "Binary/<id>". ${HOW_TO_CALL}`);
    }
    const document = reference.startsWith('Binary/')
      ? await downloadCsv(medplum, reference, reference)
      : await downloadDocumentReference(medplum, await readDocumentReference(medplum, reference));
    return { document, table, settings, dryRun, source: reference };
  }
  if (Object.keys(input).length === 0) {
    throw new BotInputError(
      'The bot input is empty. Medplum passes text/csv and application/octet-stream bodies to bots as {}, ' +
        `so the file never arrived. ${HOW_TO_CALL}`
    );
  }
  throw new BotInputError(`Unrecognised bot input (keys: ${Object.keys(input).join(', ')}). ${HOW_TO_CALL}`);
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

function textDocument(name: string, text: string): CsvDocument {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_CSV_BYTES) {
    throw tooLarge(name, bytes);
  }
  return csvFromText(name, text);
}

function tooLarge(name: string, bytes: number): BotInputError {
  const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
  // Near the limit one decimal would read "50.0 MB, over the 50.0 MB limit": show the bytes too.
  const size = bytes - MAX_CSV_BYTES < 1024 * 1024 ? `${mb(bytes)} (${bytes} bytes)` : mb(bytes);
  return new BotInputError(
    `${name}: the file is ${size}, over the ${mb(MAX_CSV_BYTES)} (${MAX_CSV_BYTES} bytes) limit for one bot run; import it with the command line instead`
  );
}

async function readDocumentReference(medplum: MedplumClient, reference: string): Promise<DocumentReference> {
  try {
    return await medplum.readReference<DocumentReference>({ reference }, { cache: 'no-cache' });
  } catch (err) {
    throw new BotInputError(`Could not read ${reference}: ${normalizeErrorString(err)}`);
  }
}

/** The CSV attachment of an upload: the first text/csv one, else the first with a URL. */
export function csvAttachment(doc: DocumentReference): Attachment | undefined {
  const attachments = (doc.content ?? []).map((c) => c.attachment).filter((a) => a?.url);
  return attachments.find((a) => a.contentType?.startsWith('text/csv')) ?? attachments[0];
}

async function downloadDocumentReference(medplum: MedplumClient, doc: DocumentReference): Promise<CsvDocument> {
  const attachment = csvAttachment(doc);
  if (!attachment?.url) {
    throw new BotInputError(`DocumentReference/${doc.id} has no attachment with a URL yet`);
  }
  const name = attachment.title ?? doc.description ?? `DocumentReference/${doc.id}`;
  return downloadCsv(medplum, attachment.url, name);
}

export async function downloadCsv(medplum: MedplumClient, url: string, name: string): Promise<CsvDocument> {
  let bytes: Uint8Array;
  try {
    const blob = await medplum.download(url, { cache: 'no-cache' });
    bytes = new Uint8Array(await blob.arrayBuffer());
  } catch (err) {
    throw new BotInputError(`Could not download ${name}: ${normalizeErrorString(err)}`);
  }
  if (bytes.length > MAX_CSV_BYTES) {
    throw tooLarge(name, bytes.length);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new BotInputError(`${name}: the file is not valid UTF-8 text; re-export it as UTF-8`);
  }
  return csvFromText(name, text);
}
