import { OperationOutcomeError } from '@medplum/core';
import type { OperationOutcome, ProjectSetting } from '@medplum/fhirtypes';
import { decodeCsvBytes } from '../csv/bytes';
import type { CsvDocument } from '../csv/document';
import { OutOfTimeError } from '../execute/quota';
import type { Retrier } from '../execute/retry';
import type { ServerLink } from '../execute/server-link';
import { MAX_CSV_BYTES, tooLargeProblem } from './event';

/**
 * Downloads an upload's bytes from this Medplum, and from nowhere else.
 *
 * An attachment URL is only a pointer: whatever it says, the bytes are fetched as
 * `<this server's FHIR base>/Binary/<id>` with the bot's own token, so no URL an upload names can
 * send the bot (or its token) to another host, and the server's access rules decide what the bot
 * may read. The URL must still be one of this server's forms for the Binary id to be trusted:
 * `Binary/<id>`, the FHIR URL of a Binary, or a storage URL under this server's storage base
 * (`<base>storage/` by default; hosted Medplum serves storage from its own host, named with the
 * STORAGE_BASE_URL secret). Anything else is refused and not fetched.
 */

/** Why an upload's bytes could not be had; its Task fails with the message. */
export class DownloadError extends Error {
  constructor(
    readonly reason: 'not-from-this-server' | 'missing' | 'deleted' | 'forbidden' | 'too-large' | 'failed',
    message: string
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** The places a Binary of this Medplum may be named by. */
export interface TrustedLocations {
  /** `https://host/fhir/R4/` */
  fhirBase: URL;
  /** Storage bases, e.g. `https://host/storage/`. */
  storageBases: URL[];
}

export function trustedLocations(link: ServerLink, secrets: Record<string, ProjectSetting> = {}): TrustedLocations {
  const baseUrl = link.medplum.getBaseUrl();
  const configured = secrets.STORAGE_BASE_URL?.valueString ?? '';
  const storageBases = [new URL('storage/', baseUrl)];
  for (const value of configured.split(',').map((v) => v.trim()).filter(Boolean)) {
    const url = safeUrl(value.endsWith('/') ? value : `${value}/`);
    if (url?.protocol === 'https:' && !url.username && !url.password) {
      storageBases.push(url);
    }
  }
  return { fhirBase: new URL(link.medplum.fhirUrl().toString().replace(/\/?$/, '/')), storageBases };
}

function safeUrl(value: string, base?: URL): URL | undefined {
  try {
    return new URL(value, base);
  } catch {
    return undefined;
  }
}

/**
 * The Binary id an attachment URL names, when it is one of this server's forms; DownloadError
 * otherwise. The message names the host, never the whole URL (it may carry a signature).
 */
export function binaryIdOf(url: string, trusted: TrustedLocations): string {
  const relative = /^Binary\/([^/?#]+)$/.exec(url);
  if (relative) {
    return checkedId(relative[1]);
  }
  const parsed = safeUrl(url);
  const refuse = (): never => {
    const where = parsed ? `${parsed.protocol}//${parsed.host}` : 'a malformed URL';
    throw new DownloadError(
      'not-from-this-server',
      `the attachment does not point at a file stored in this Medplum (${where}); only Binary/<id> and this server's Binary and storage URLs are downloaded`
    );
  };
  if (!parsed || parsed.username || parsed.password) {
    return refuse();
  }
  const within = (base: URL): string | undefined =>
    parsed.origin === base.origin && parsed.pathname.startsWith(base.pathname)
      ? parsed.pathname.slice(base.pathname.length)
      : undefined;
  const fhirPath = within(trusted.fhirBase);
  const fhirMatch = fhirPath !== undefined ? /^Binary\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(fhirPath) : null;
  if (fhirMatch) {
    return checkedId(fhirMatch[1]);
  }
  for (const base of trusted.storageBases) {
    const rest = within(base);
    // Presigned storage URLs: <storage base><binary id>/<version id>?Expires=...&Signature=...
    const storageMatch = rest !== undefined ? /^(?:Binary\/)?([^/]+)(?:\/[^/]+)?$/.exec(rest) : null;
    if (storageMatch) {
      return checkedId(storageMatch[1]);
    }
  }
  return refuse();
}

function checkedId(raw: string): string {
  let id = raw;
  try {
    id = decodeURIComponent(raw);
  } catch {
    // keep it: the check below refuses it
  }
  if (!FHIR_ID.test(id)) {
    throw new DownloadError('not-from-this-server', 'the attachment names a Binary id that is not a valid FHIR id');
  }
  return id;
}

export interface DownloadOptions {
  retrier: Retrier;
  maxBytes?: number;
}

/**
 * The bytes of Binary/<id>, read from this server's FHIR API. The size limit is enforced while
 * reading (and from Content-Length before); server errors and rate limits are retried within the
 * deadline; a missing, deleted or forbidden Binary is a DownloadError naming it.
 */
export async function downloadBinary(
  link: ServerLink,
  trusted: TrustedLocations,
  binaryId: string,
  name: string,
  options: DownloadOptions
): Promise<Uint8Array> {
  const maxBytes = options.maxBytes ?? MAX_CSV_BYTES;
  const url = new URL(`Binary/${encodeURIComponent(binaryId)}`, trusted.fhirBase).toString();
  const response = await options.retrier.run(`downloading ${name}`, async () => {
    const answer = await link.get(url, { Accept: '*/*' });
    if (answer.status >= 400) {
      throw await downloadFailure(answer, binaryId);
    }
    return answer;
  });
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw new DownloadError('too-large', tooLargeProblem(declared));
  }
  return readLimited(response, name, maxBytes, options.retrier);
}

/** An error answer as a DownloadError (final) or an OperationOutcomeError the retrier judges by status. */
async function downloadFailure(response: Response, binaryId: string): Promise<Error> {
  const status = response.status;
  if (status === 404) {
    return new DownloadError('missing', `the file's Binary/${binaryId} does not exist (404)`);
  }
  if (status === 410) {
    return new DownloadError('deleted', `the file's Binary/${binaryId} was deleted (410)`);
  }
  if (status === 401 || status === 403) {
    return new DownloadError('forbidden', `the bot may not read the file's Binary/${binaryId} (${status}); check its access policy`);
  }
  if (status === 429 || status >= 500) {
    // The link put the status into the outcome: the retrier waits or backs off by it.
    return new OperationOutcomeError((await response.json()) as OperationOutcome);
  }
  return new DownloadError('failed', `downloading Binary/${binaryId} failed: HTTP ${status}`);
}

async function readLimited(response: Response, name: string, maxBytes: number, retrier: Retrier): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (!reader) {
    return new Uint8Array(0);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw new DownloadError('too-large', tooLargeProblem(total, true));
    }
    if (retrier.clock.now() > retrier.deadline) {
      await reader.cancel();
      throw new OutOfTimeError(`while downloading ${name}`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** An upload's CSV: downloaded from this Medplum and decoded as strict UTF-8 text. */
export async function downloadCsv(
  link: ServerLink,
  trusted: TrustedLocations,
  binaryId: string,
  name: string,
  options: DownloadOptions
): Promise<CsvDocument> {
  return decodeCsvBytes(name, await downloadBinary(link, trusted, binaryId, name, options));
}
