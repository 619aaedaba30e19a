import { badRequest } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';

/**
 * What the server's express body parsers (packages/server/src/app.ts) accept and produce.
 *
 * Limits:
 * - JSON (`application/json`, `application/*+json`): `maxJsonSize`, default `1mb` = 1,048,576 bytes;
 * - `text/plain` and HL7 v2: body-parser's default `100kb` = 102,400 bytes;
 * - `POST fhir/R4` with `Prefer: respond-async`: parsed earlier by the async batch handler, up to
 *   `maxBatchSize` (default `50mb`);
 * - Binary uploads (`fhir/R4/Binary`) are mounted before the parsers and have no such limit.
 * A body over its limit is refused before any processing: body-parser raises `entity.too.large` and the
 * server's error handler answers `sendOutcome(res, badRequest('File too large'))`, i.e. 400 with that
 * OperationOutcome (not 413). Nothing is charged to the quota.
 */
export const MAX_JSON_BODY_BYTES = 1_048_576;
export const MAX_TEXT_BODY_BYTES = 102_400;
export const MAX_ASYNC_BATCH_BODY_BYTES = 50 * 1_048_576;

const JSON_CONTENT_TYPE = /^application\/([\w.+-]+\+)?json\b/i;
const TEXT_CONTENT_TYPE = /^(text\/plain|x-application\/hl7-v2\+er7)\b/i;

/** The limit a body of this content type is held to, or undefined when no parser limits it. */
export function bodyLimit(contentType: string | null, asyncBatch: boolean): number | undefined {
  if (!contentType) {
    return undefined;
  }
  if (JSON_CONTENT_TYPE.test(contentType)) {
    return asyncBatch ? MAX_ASYNC_BATCH_BODY_BYTES : MAX_JSON_BODY_BYTES;
  }
  return TEXT_CONTENT_TYPE.test(contentType) ? MAX_TEXT_BODY_BYTES : undefined;
}

/** The server's answer to a body over its parser's limit. */
export function fileTooLarge(): OperationOutcome {
  return badRequest('File too large');
}

/** True for JSON content types the server's JSON parser accepts (`application/json`, `application/*+json`). */
export function isJsonBody(contentType: string | null): boolean {
  return Boolean(contentType && JSON_CONTENT_TYPE.test(contentType));
}

/** True for the content types the server's text parser reads as a string. */
export function isTextBody(contentType: string | null): boolean {
  return Boolean(contentType && TEXT_CONTENT_TYPE.test(contentType));
}

/** True for `application/x-www-form-urlencoded`, which the server's urlencoded parser reads into fields. */
export function isFormBody(contentType: string | null): boolean {
  return Boolean(contentType && /^application\/x-www-form-urlencoded\b/i.test(contentType));
}

/** Query or form fields as express's parsers give them: repeated names become arrays. */
export function formFields(params: URLSearchParams): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of params) {
    const existing = result[name];
    if (existing === undefined) {
      result[name] = value;
    } else if (Array.isArray(existing)) {
      existing.push(value);
    } else {
      result[name] = [existing, value];
    }
  }
  return result;
}
