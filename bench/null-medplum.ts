/**
 * A server that answers every batch instantly, as Medplum would answer it, so that a measurement
 * sees only the importer's own work (parsing, mapping, bundling, classifying) and the JSON both ways.
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
 * (@medplum/fhir-router) shapes it: every entry carries its OperationOutcome and status; the probe
 * (a nested transaction of GET searches) gets empty searchsets; every write gets 201, a location
 * and the resource echoed with an id, a version and lastUpdated. Ids and versions are UUID-sized
 * but come from a counter: the importer never looks inside them, and random ones would only add
 * the null server's own time.
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

/** A real MedplumClient over a fetch that answers at once: JSON out, JSON back, as over HTTP. */
export function nullMedplum(): NullMedplum {
  const stats: NullServerStats = { requests: 0, bodyBytesTotal: 0, bodyBytesMax: 0, serverSeconds: 0 };
  const answer = batchAnswerer();
  const fetch = async (_url: string, init: RequestInit = {}): Promise<Response> => {
    const body = await bodyBytes(init.body); // not timed: reading a body is the transport's work
    const start = performance.now();
    try {
      return respond(body);
    } finally {
      stats.serverSeconds += (performance.now() - start) / 1000;
    }
  };
  const respond = (body: Uint8Array): Response => {
    stats.requests++;
    stats.bodyBytesTotal += body.length;
    stats.bodyBytesMax = Math.max(stats.bodyBytesMax, body.length);
    const request = JSON.parse(body.length ? utf8.decode(body) : '{}') as Bundle;
    if (request.resourceType !== 'Bundle') {
      return new Response(JSON.stringify({ resourceType: 'OperationOutcome', issue: [] }), { status: 400, headers: JSON_HEADERS });
    }
    return new Response(JSON.stringify(answer(request)), { status: 200, headers: JSON_HEADERS });
  };
  const medplum = new MedplumClient({ baseUrl: 'https://null.example.com/', fetch, maxRetries: 0 });
  return { medplum, stats };
}
