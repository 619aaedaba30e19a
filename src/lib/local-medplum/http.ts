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
