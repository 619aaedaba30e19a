import { ContentType } from '@medplum/core';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';

/** Extra response headers, e.g. `RateLimit`. */
export type HeaderMap = Record<string, string>;

/** A FHIR JSON response with the status and headers the server would send. */
export function fhirResponse(status: number, body: Resource, extraHeaders: HeaderMap = {}): Response {
  const headers: HeaderMap = { 'content-type': ContentType.FHIR_JSON + '; charset=utf-8', ...extraHeaders };
  const meta = body.resourceType !== 'OperationOutcome' && body.resourceType !== 'Bundle' ? body.meta : undefined;
  if (meta?.versionId) {
    headers['etag'] = `W/"${meta.versionId}"`;
  }
  if (meta?.lastUpdated) {
    headers['last-modified'] = new Date(meta.lastUpdated).toUTCString();
  }
  return new Response(JSON.stringify(body), { status, headers });
}

export function outcomeResponse(status: number, outcome: OperationOutcome, extraHeaders: HeaderMap = {}): Response {
  return fhirResponse(status, outcome, extraHeaders);
}

/** Raw bytes, as the server answers a Binary download. */
export function bytesResponse(bytes: Uint8Array<ArrayBuffer>, contentType: string, extraHeaders: HeaderMap = {}): Response {
  return new Response(bytes, {
    status: 200,
    headers: { 'content-type': contentType, 'content-length': String(bytes.byteLength), ...extraHeaders },
  });
}

/** True when an Accept header asks for FHIR JSON (or JSON) rather than raw content. */
export function acceptsJson(accept: string | null): boolean {
  return Boolean(accept && /application\/(fhir\+)?json/i.test(accept));
}

/** True when a Content-Type header names JSON (a FHIR resource body). */
export function isJsonContentType(contentType: string | null): boolean {
  return Boolean(contentType && /application\/(fhir\+)?json/i.test(contentType));
}

/** Reads any fetch body (string, Uint8Array, ArrayBuffer, Blob, stream) as bytes. */
export async function bodyBytes(body: BodyInit | null | undefined): Promise<Uint8Array<ArrayBuffer>> {
  if (body === null || body === undefined) {
    return new Uint8Array(0);
  }
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** Reads any fetch body as text. */
export async function bodyText(body: BodyInit | null | undefined): Promise<string | undefined> {
  if (body === null || body === undefined) {
    return undefined;
  }
  return typeof body === 'string' ? body : new Response(body).text();
}

/**
 * A request body read once and shared by the limit check, the JSON parser and the handlers. A string
 * body (what MedplumClient sends for JSON) is measured without being re-encoded.
 */
export class RequestBody {
  private readonly init: BodyInit | null | undefined;
  private bytesValue: Uint8Array<ArrayBuffer> | undefined;

  private constructor(init: BodyInit | null | undefined, bytes: Uint8Array<ArrayBuffer> | undefined) {
    this.init = init;
    this.bytesValue = bytes;
  }

  static async read(init: BodyInit | null | undefined): Promise<RequestBody> {
    if (init === null || init === undefined || typeof init === 'string') {
      return new RequestBody(init, undefined);
    }
    return new RequestBody(init, await bodyBytes(init));
  }

  get empty(): boolean {
    return this.size === 0;
  }

  /** Size in bytes, as a body parser counts it. */
  get size(): number {
    if (typeof this.init === 'string') {
      return Buffer.byteLength(this.init, 'utf8');
    }
    return this.bytesValue?.byteLength ?? 0;
  }

  text(): string {
    if (typeof this.init === 'string') {
      return this.init;
    }
    return this.bytesValue ? new TextDecoder().decode(this.bytesValue) : '';
  }

  bytes(): Uint8Array<ArrayBuffer> {
    if (typeof this.init === 'string') {
      this.bytesValue ??= new Uint8Array(Buffer.from(this.init, 'utf8'));
    }
    return this.bytesValue ?? new Uint8Array(0);
  }
}

/** An HTML error page as a gateway (nginx, an AWS ALB) sends it when the server behind it fails. */
export function gatewayErrorResponse(status: 502 | 504): Response {
  const title = status === 502 ? '502 Bad Gateway' : '504 Gateway Time-out';
  const page =
    `<html>\r\n<head><title>${title}</title></head>\r\n` +
    `<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`;
  return new Response(page, { status, headers: { 'content-type': 'text/html', 'content-length': String(page.length) } });
}

/** A JSON (not FHIR) response, as the server sends a bot's return value. */
export function jsonResponse(status: number, value: unknown, extraHeaders: HeaderMap = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...extraHeaders },
  });
}
