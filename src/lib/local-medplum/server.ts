import { badRequest, getStatus, normalizeOperationOutcome, notFound, sleep } from '@medplum/core';
import type { FhirRequest, FhirRouter, HttpMethod } from '@medplum/fhir-router';
import type { Binary, Resource } from '@medplum/fhirtypes';
import { MockFetchClient } from '@medplum/mock';
import { handleAdminRequest } from './admin';
import type { FaultInjector } from './faults';
import type { HeaderMap } from './http';
import {
  acceptsJson,
  bodyBytes,
  bodyText,
  bytesResponse,
  fhirResponse,
  isJsonContentType,
  outcomeResponse,
} from './http';
import type { LocalRepository } from './repository';

export interface LocalServerSettings {
  /** Base URL with a trailing slash, e.g. `https://example.com/`. */
  readonly baseUrl: string;
  /** Whether transaction Bundles are atomic (the project feature `transaction-bundles`). */
  readonly transactions: boolean;
  /** Simulated round trip added to every request. */
  readonly latencyMs: number;
  /** The fault injector in force (it can be swapped between requests). */
  readonly faults: () => FaultInjector;
  /** Called once per fetch call, before anything else. */
  readonly onRequest: () => void;
}

const FHIR_PREFIX = 'fhir/R4';
/** Where Binary bytes are served from, like the server's storage URLs (distinct from the FHIR URL). */
const STORAGE_PREFIX = 'storage/Binary/';

/**
 * The local server: MockClient's fetch, answering with real `Response` objects carrying the status
 * codes and headers the Medplum server sends. FHIR requests go through fhir-router (the same code the
 * server uses for batches and transactions) against a LocalRepository; Binary uploads and downloads
 * are handled here, as the server handles them outside the router.
 *
 * Requests are processed one at a time (in arrival order): this keeps transactions isolated without
 * locks, and keeps injected faults deterministic. Simulated latency is spent before queueing, so
 * concurrent requests still overlap their round trips.
 */
export class LocalFetchClient extends MockFetchClient {
  private readonly localRepo: LocalRepository;
  private readonly settings: LocalServerSettings;
  private queueTail: Promise<unknown> = Promise.resolve();

  constructor(router: FhirRouter, repo: LocalRepository, settings: LocalServerSettings) {
    super(router, repo, settings.baseUrl, { seedDefaultData: false });
    this.localRepo = repo;
    this.settings = settings;
  }

  /** The storage URL of a Binary's bytes, as `createBinary` returns it. */
  storageUrl(binaryId: string): string {
    return this.settings.baseUrl + STORAGE_PREFIX + binaryId;
  }

  // MockFetchClient.mockFetch seeds the repository with MockClient's own search parameters and
  // StructureDefinitions on first use; this override never does, so the repository starts empty.
  override async mockFetch(url: string, options: RequestInit = {}): Promise<Response> {
    this.settings.onRequest();
    if (this.settings.latencyMs > 0) {
      await sleep(this.settings.latencyMs);
    }
    return this.enqueue(() => this.handle(url, options));
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queueTail.then(task);
    this.queueTail = result.catch(() => undefined);
    return result;
  }

  private async handle(url: string, init: RequestInit): Promise<Response> {
    const method = (init.method ?? 'GET').toUpperCase() as HttpMethod;
    const faults = this.settings.faults();
    const decision = faults.decide(method);
    if (decision.kind === 'network-before') {
      throw new TypeError('fetch failed');
    }
    if (decision.kind === 'server-error') {
      return outcomeResponse(decision.status, decision.outcome, this.rateLimitHeaders(faults));
    }
    const response = await this.route(method, url, new Headers(init.headers), init.body, faults);
    if (decision.kind === 'network-after') {
      throw new TypeError('fetch failed');
    }
    return response;
  }

  private async route(
    method: HttpMethod,
    url: string,
    headers: Headers,
    body: BodyInit | null | undefined,
    faults: FaultInjector
  ): Promise<Response> {
    if (!url.startsWith(this.settings.baseUrl)) {
      return outcomeResponse(404, notFound);
    }
    const path = url.slice(this.settings.baseUrl.length);
    const pathname = path.split('?')[0];
    if (pathname.startsWith(STORAGE_PREFIX) && method === 'GET') {
      return this.downloadBinary(decodeURIComponent(pathname.slice(STORAGE_PREFIX.length)));
    }
    if (pathname === FHIR_PREFIX || pathname.startsWith(FHIR_PREFIX + '/')) {
      return this.handleFhir(method, path.slice(FHIR_PREFIX.length) || '/', headers, body, faults);
    }
    if (pathname.startsWith('admin/')) {
      return handleAdminRequest(this.localRepo, method, pathname, body);
    }
    return outcomeResponse(404, badRequest(`Not emulated by LocalMedplum: ${method} ${pathname}`));
  }

  private async handleFhir(
    method: HttpMethod,
    fhirPath: string,
    headers: Headers,
    body: BodyInit | null | undefined,
    faults: FaultInjector
  ): Promise<Response> {
    const pathname = fhirPath.split('?')[0];
    const extraHeaders = (): HeaderMap => this.rateLimitHeaders(faults);

    // The server stores a non-JSON POST to Binary as the Binary's bytes, and answers a Binary read
    // with raw bytes unless FHIR JSON is asked for (MedplumClient.download asks for */*).
    if (method === 'POST' && /^\/Binary\/?$/.test(pathname) && !isJsonContentType(headers.get('content-type'))) {
      return this.uploadBinary(headers.get('content-type'), body, extraHeaders);
    }
    const binaryRead = /^\/Binary\/([^/]+)$/.exec(pathname);
    if (method === 'GET' && binaryRead && !acceptsJson(headers.get('accept'))) {
      return this.downloadBinary(decodeURIComponent(binaryRead[1]));
    }

    let parsedBody: unknown;
    const text = await bodyText(body);
    if (text) {
      try {
        parsedBody = JSON.parse(text);
      } catch {
        return outcomeResponse(400, badRequest('Invalid JSON body'), extraHeaders());
      }
    }

    const request: FhirRequest = {
      method,
      url: fhirPath,
      pathname: '',
      body: parsedBody,
      params: Object.create(null),
      query: Object.create(null),
      headers: Object.fromEntries(headers.entries()),
      config: { transactions: this.settings.transactions },
    };
    const [outcome, resource] = await this.router.handleRequest(request, this.localRepo);
    const status = getStatus(outcome);
    const payload: Resource = resource ? this.withStorageUrl(resource) : outcome;
    const responseHeaders = extraHeaders();
    if (status === 201 && resource?.id) {
      const version = resource.meta?.versionId ? `/_history/${resource.meta.versionId}` : '';
      responseHeaders['location'] = `${this.settings.baseUrl}${FHIR_PREFIX}/${resource.resourceType}/${resource.id}${version}`;
    }
    return fhirResponse(status, payload, responseHeaders);
  }

  private async uploadBinary(
    contentType: string | null,
    body: BodyInit | null | undefined,
    extraHeaders: () => HeaderMap
  ): Promise<Response> {
    const bytes = await bodyBytes(body);
    try {
      const binary = await this.localRepo.createResource<Binary>({
        resourceType: 'Binary',
        contentType: contentType ?? 'application/octet-stream',
        data: Buffer.from(bytes).toString('base64'),
      });
      return fhirResponse(201, this.withStorageUrl(binary), extraHeaders());
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      return outcomeResponse(getStatus(outcome), outcome, extraHeaders());
    }
  }

  private async downloadBinary(id: string): Promise<Response> {
    let binary: Binary;
    try {
      binary = await this.localRepo.readResource<Binary>('Binary', id);
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      return outcomeResponse(getStatus(outcome), outcome);
    }
    const bytes = binary.data ? new Uint8Array(Buffer.from(binary.data, 'base64')) : new Uint8Array(0);
    return bytesResponse(bytes, binary.contentType ?? 'application/octet-stream');
  }

  /** A Binary leaves the server with `url` pointing at its bytes (the real server presigns one). */
  private withStorageUrl(resource: Resource): Resource {
    if (resource.resourceType === 'Binary' && resource.id) {
      return { ...resource, url: this.storageUrl(resource.id) } as Resource;
    }
    return resource;
  }

  private rateLimitHeaders(faults: FaultInjector): HeaderMap {
    const header = faults.rateLimitHeader();
    return header ? { ratelimit: header } : {};
  }
}
