/**
 * A server that answers every request instantly, as Medplum would answer it for resources that are
 * all new, so that a measurement sees only the importer's own work (parsing, mapping, planning,
 * bundling, classifying) and the JSON both ways: the lookups of stored resources
 * (`POST Type/_search`) find nothing, and every write of a batch creates its resource.
 */
import { allOk, created, MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';

export interface NullServerStats {
  requests: number;
  /** Request body sizes: what the real server's 1 MB JSON limit applies to. */
  bodyBytesTotal: number;
  bodyBytesMax: number;
  /**
   * Time spent inside the null server itself (parsing the request, building and serialising the
   * answer). It runs in the importer's process, so it is subtracted for the importer's own share.
   */
  serverSeconds: number;
}

export interface NullMedplum {
  medplum: MedplumClient;
  stats: NullServerStats;
}

const JSON_HEADERS = { 'content-type': 'application/fhir+json' };
const utf8 = new TextDecoder();

/** The request body as bytes, whichever form MedplumClient sent it in (string, bytes or Blob). */
async function bodyBytes(body: BodyInit | null | undefined): Promise<Uint8Array> {
  if (body === undefined || body === null) {
    return new Uint8Array(0);
  }
  if (typeof body === 'string') {
    return Buffer.from(body, 'utf8');
  }
  if (body instanceof Uint8Array) {
    return body;
  }
  if (body instanceof ArrayBuffer) {
    return new Uint8Array(body);
  }
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/**
 * The answer Medplum gives a batch in which everything is new, shaped as its batch processor
 * (@medplum/fhir-router) shapes it: every entry carries its OperationOutcome and status; searches
 * (GET entries) get empty searchsets; every write gets 201, a location and the resource echoed
 * with an id, a version and lastUpdated. Ids and versions are UUID-sized but come from a counter:
 * the importer never looks inside them, and random ones would only add the null server's own time.
 */
export function batchAnswerer(): (request: Bundle) => Bundle {
  let counter = 0;
  const nextUuid = (): string => `00000000-0000-4000-8000-${(++counter).toString(16).padStart(12, '0')}`;
  const answer = (entry: BundleEntry, lastUpdated: string): BundleEntry => {
    const resource = entry.resource;
    if (resource?.resourceType === 'Bundle' && entry.request?.method === 'POST') {
      return { response: { outcome: allOk, status: '200' }, resource: nested(resource, lastUpdated) };
    }
    if (entry.request?.method === 'GET') {
      return { response: { outcome: allOk, status: '200' }, resource: { resourceType: 'Bundle', type: 'searchset' } };
    }
    if (!resource) {
      return { response: { outcome: allOk, status: '200' } };
    }
    const stored = { ...resource, id: nextUuid(), meta: { versionId: nextUuid(), lastUpdated } } as Resource;
    return { response: { outcome: created, status: '201', location: `${stored.resourceType}/${stored.id}` }, resource: stored };
  };
  const nested = (bundle: Bundle, lastUpdated: string): Bundle => ({
    resourceType: 'Bundle',
    type: bundle.type === 'transaction' ? 'transaction-response' : 'batch-response',
    entry: (bundle.entry ?? []).map((entry) => answer(entry, lastUpdated)),
  });
  return (request) => nested(request, new Date().toISOString());
}

export interface NullMedplumOptions {
  /**
   * Resource types the server holds whatever is looked up: a lookup (`POST Type/_search`) of one
   * of them finds one resource per identifier asked for, so rows referring to them can be written
   * (encounters referring to patients). Other types are never found: every write is a create.
   */
  stored?: readonly string[];
}

/** The identifiers of a lookup's form body: `identifier=sys|value,sys|value&_count=n` (encoded, FHIR-escaped). */
function lookedUp(body: Uint8Array): { system: string; value: string }[] {
  const param = utf8.decode(body).split('&').find((p) => p.startsWith('identifier='));
  const unescape = (text: string): string => decodeURIComponent(text).replace(/\\([\\,|$])/g, '$1');
  return (param?.slice('identifier='.length).split(',') ?? []).map((token) => {
    const [system, value] = token.split('|');
    return { system: unescape(system ?? ''), value: unescape(value ?? '') };
  });
}

/** A real MedplumClient over a fetch that answers at once: JSON out, JSON back, as over HTTP. */
export function nullMedplum(options: NullMedplumOptions = {}): NullMedplum {
  const stored = new Set(options.stored ?? []);
  const stats: NullServerStats = { requests: 0, bodyBytesTotal: 0, bodyBytesMax: 0, serverSeconds: 0 };
  const answer = batchAnswerer();
  const fetch = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const body = await bodyBytes(init.body); // not timed: reading a body is the transport's work
    const start = performance.now();
    try {
      return respond(url, body);
    } finally {
      stats.serverSeconds += (performance.now() - start) / 1000;
    }
  };
  const respond = (url: string, body: Uint8Array): Response => {
    stats.requests++;
    stats.bodyBytesTotal += body.length;
    stats.bodyBytesMax = Math.max(stats.bodyBytesMax, body.length);
    const path = new URL(url).pathname;
    if (path.endsWith('/_search')) {
      // A lookup of stored resources by identifier (form-encoded): found only for the stored types.
      const type = path.split('/').at(-2) ?? '';
      const found = stored.has(type)
        ? lookedUp(body).map(({ system, value }, i) => ({
            resource: { resourceType: type, id: `stored-${i}-${value}`, meta: { versionId: '1', lastUpdated: '2026-01-01T00:00:00Z' }, identifier: [{ system, value }] },
          }))
        : [];
      return new Response(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: found }), { status: 200, headers: JSON_HEADERS });
    }
    const request = JSON.parse(body.length ? utf8.decode(body) : '{}') as Bundle;
    if (request.resourceType !== 'Bundle') {
      return new Response(JSON.stringify({ resourceType: 'OperationOutcome', issue: [] }), { status: 400, headers: JSON_HEADERS });
    }
    return new Response(JSON.stringify(answer(request)), { status: 200, headers: JSON_HEADERS });
  };
  const medplum = new MedplumClient({ baseUrl: 'https://null.example.com/', fetch, maxRetries: 0 });
  return { medplum, stats };
}
