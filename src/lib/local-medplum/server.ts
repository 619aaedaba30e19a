import { badRequest, getStatus, normalizeOperationOutcome, notFound } from '@medplum/core';
import type { FhirRequest, FhirRouter, HttpMethod } from '@medplum/fhir-router';
import type { Binary, Bundle, Resource } from '@medplum/fhirtypes';
import { MockFetchClient } from '@medplum/mock';
import { handleAdminRequest } from './admin';
import type { BotExecutions, HandlerResult } from './bots';
import { asyncJobStatus } from './bots';
import type { LocalClock } from './clock';
import type { FaultInjector } from './faults';
import { concurrencyConflictProbability, throttledOutcome } from './faults';
import {
  acceptsJson,
  bytesResponse,
  fhirResponse,
  gatewayErrorResponse,
  isJsonContentType,
  outcomeResponse,
  RequestBody,
} from './http';
import { bodyLimit, fileTooLarge, formFields, isFormBody } from './body-parsers';
import type { FhirQuota } from './quota';
import type { LocalRepository } from './repository';
import type { StorageUrls } from './storage';

/** Simulated processing time, spent on the server's clock after each request is processed. */
export interface ServerTimeOptions {
  /** Per request, whatever it holds (default 0). */
  readonly perRequestMs?: number;
  /** Per batch or transaction entry, nested bundles' entries included; other requests count 1 (default 0). */
  readonly perEntryMs?: number;
}

export interface LocalServerSettings {
  /** Base URL with a trailing slash, e.g. `https://example.com/`. */
  readonly baseUrl: string;
  /** Whether transaction Bundles are atomic (the project feature `transaction-bundles`). */
  readonly transactions: boolean;
  /** Simulated round trip added to every request, spent on the clock before the request queues. */
  readonly latencyMs: number;
  readonly serverTime: ServerTimeOptions;
  readonly clock: LocalClock;
  /** Whether concurrent write requests make writes fail 409 as on the real server. */
  readonly concurrencyConflicts: boolean;
  /** The fault injector in force (it can be swapped between requests). */
  readonly faults: () => FaultInjector;
  readonly quota: FhirQuota;
  readonly storage: StorageUrls;
  readonly bots: BotExecutions;
  /** Written while a request is processed: the repository's writes read it to draw concurrency conflicts. */
  readonly writeConflicts: { probability: number };
  /** Called once per fetch call, before anything else. */
  readonly onRequest: () => void;
}

const FHIR_PREFIX = 'fhir/R4';
/** Without a quota of its own the injected 429 reports the server's default quota. */
const DEFAULT_FHIR_QUOTA = 50_000;

/** One request as the server sees it once it has been read. */
interface RequestContext {
  readonly method: HttpMethod;
  readonly url: string;
  readonly headers: Headers;
  readonly body: RequestBody;
  /** Batch and transaction entries processed (nested included), for the simulated server time. */
  entries: number;
}

/**
 * The local server: MockClient's fetch, answering with real `Response` objects carrying the status
 * codes and headers the Medplum server sends. FHIR requests go through fhir-router (the same code the
 * server uses for batches and transactions) against a LocalRepository; Binary uploads and downloads,
 * storage URLs, bot `$execute` and AsyncJob status are handled here, as the server handles them
 * outside the router.
 *
 * Requests are processed one at a time (in arrival order): this keeps transactions isolated without
 * locks, and keeps injected faults deterministic. Simulated latency is spent before queueing, so
 * concurrent requests still overlap their round trips; simulated server time is spent inside the queue.
 */
export class LocalFetchClient extends MockFetchClient {
  private readonly localRepo: LocalRepository;
  private readonly settings: LocalServerSettings;
  private queueTail: Promise<unknown> = Promise.resolve();
  private writeRequestsInFlight = 0;

  constructor(router: FhirRouter, repo: LocalRepository, settings: LocalServerSettings) {
    super(router, repo, settings.baseUrl, { seedDefaultData: false });
    this.localRepo = repo;
    this.settings = settings;
  }

  // MockFetchClient.mockFetch seeds the repository with MockClient's own search parameters and
  // StructureDefinitions on first use; this override never does, so the repository starts empty.
  override async mockFetch(url: string, options: RequestInit = {}): Promise<Response> {
    this.settings.onRequest();
    const method = (options.method ?? 'GET').toUpperCase() as HttpMethod;
    // A request is in flight from the fetch call until its response is returned.
    const write = isWriteRequest(method, url);
    if (write) {
      this.writeRequestsInFlight++;
    }
    try {
      if (this.settings.latencyMs > 0) {
        await this.settings.clock.sleep(this.settings.latencyMs);
      }
      const result = await this.enqueue(() => this.handle(method, url, options, write));
      return typeof result === 'function' ? await result() : result;
    } finally {
      if (write) {
        this.writeRequestsInFlight--;
      }
    }
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queueTail.then(task);
    this.queueTail = result.catch(() => undefined);
    return result;
  }

  private async handle(method: HttpMethod, url: string, init: RequestInit, write: boolean): Promise<HandlerResult> {
    const faults = this.settings.faults();
    const decision = faults.decide(method);
    switch (decision.kind) {
      case 'network-before':
        throw new TypeError('fetch failed');
      case 'gateway-error':
        return gatewayErrorResponse(decision.status);
      case 'rate-limited': {
        const limit = this.settings.quota.limit ?? DEFAULT_FHIR_QUOTA;
        return outcomeResponse(429, throttledOutcome(decision.secondsToReset * 1000, limit), {
          ratelimit: `"fhirInteractions";r=0;t=${decision.secondsToReset}`,
        });
      }
      case 'server-error':
        return this.withRateLimit(outcomeResponse(decision.status, decision.outcome));
      default:
        break;
    }

    const context: RequestContext = {
      method,
      url,
      headers: new Headers(init.headers),
      body: await RequestBody.read(init.body),
      entries: 1,
    };
    const conflicts = this.settings.writeConflicts;
    conflicts.probability =
      write && this.settings.concurrencyConflicts ? concurrencyConflictProbability(this.writeRequestsInFlight) : 0;
    let result: HandlerResult;
    try {
      result = await this.route(context);
    } finally {
      conflicts.probability = 0;
    }
    await this.spendServerTime(context.entries);
    if (decision.kind === 'network-after') {
      throw new TypeError('fetch failed');
    }
    return result;
  }

  private async spendServerTime(entries: number): Promise<void> {
    const { perRequestMs = 0, perEntryMs = 0 } = this.settings.serverTime;
    const ms = perRequestMs + perEntryMs * entries;
    if (ms > 0) {
      await this.settings.clock.sleep(ms);
    }
  }

  private async route(context: RequestContext): Promise<HandlerResult> {
    const { method, url } = context;
    const storageTarget = this.settings.storage.parse(url);
    if (storageTarget && method === 'GET') {
      if (storageTarget.signatureValid === false) {
        return new Response('Invalid signature', { status: 401, headers: { 'content-type': 'text/plain' } });
      }
      return this.downloadBinary(storageTarget.binaryId);
    }
    if (!url.startsWith(this.settings.baseUrl)) {
      return outcomeResponse(404, notFound);
    }
    const path = url.slice(this.settings.baseUrl.length);
    const pathname = path.split('?')[0];
    const isFhir = pathname === FHIR_PREFIX || pathname.startsWith(FHIR_PREFIX + '/');
    const fhirPath = isFhir ? path.slice(FHIR_PREFIX.length) || '/' : '';

    // Binary uploads are routed before the server's body parsers; every other body is held to their limits.
    const binaryUpload = isFhir && /^\/Binary\/?(\?|$)/.test(fhirPath);
    if (!binaryUpload && !context.body.empty) {
      const asyncBatch = method === 'POST' && /^\/?(\?|$)/.test(fhirPath) && context.headers.get('prefer') === 'respond-async';
      const limit = bodyLimit(context.headers.get('content-type'), asyncBatch);
      if (limit !== undefined && context.body.size > limit) {
        const response = outcomeResponse(400, fileTooLarge());
        return isFhir ? this.withRateLimit(response) : response;
      }
    }

    if (isFhir) {
      const result = await this.handleFhir(context, fhirPath);
      return typeof result === 'function' ? async () => this.withRateLimit(await result()) : this.withRateLimit(result);
    }
    if (pathname.startsWith('admin/')) {
      return handleAdminRequest(this.localRepo, method, pathname, context.body.text());
    }
    return outcomeResponse(404, badRequest(`Not emulated by LocalMedplum: ${method} ${pathname}`));
  }

  private async handleFhir(context: RequestContext, fhirPath: string): Promise<HandlerResult> {
    const { method, headers } = context;
    const pathname = decodeURIComponent(fhirPath.split('?')[0]);

    // The server stores a non-JSON POST to Binary as the Binary's bytes, and answers a Binary read
    // with raw bytes unless FHIR JSON is asked for (MedplumClient.download asks for */*).
    if (method === 'POST' && /^\/Binary\/?$/.test(pathname) && !isJsonContentType(headers.get('content-type'))) {
      return this.uploadBinary(headers.get('content-type'), context.body);
    }
    const binaryRead = /^\/Binary\/([^/]+)$/.exec(pathname);
    if (method === 'GET' && binaryRead && !acceptsJson(headers.get('accept'))) {
      return this.downloadBinary(binaryRead[1], true);
    }
    const execute = /^\/Bot\/(?:([^/]+)\/)?\$execute$/.exec(pathname);
    if (execute && (method === 'POST' || method === 'GET')) {
      return this.settings.bots.execute(this.localRepo, {
        method,
        url: context.url,
        botId: execute[1],
        query: new URL(context.url).searchParams,
        headers,
        body: context.body,
        baseUrl: this.settings.baseUrl,
        now: this.settings.clock.now(),
      });
    }
    const jobStatus = /^\/job\/([^/]+)\/status$/.exec(pathname);
    if (method === 'GET' && jobStatus) {
      return asyncJobStatus(this.localRepo, jobStatus[1], this.settings.baseUrl);
    }

    let parsedBody: unknown;
    if (isFormBody(headers.get('content-type'))) {
      // `POST Type/_search` with form fields, as the server's urlencoded parser reads them.
      parsedBody = formFields(new URLSearchParams(context.body.text()));
    } else if (!context.body.empty) {
      try {
        parsedBody = JSON.parse(context.body.text());
      } catch {
        return outcomeResponse(400, badRequest('Content could not be parsed'));
      }
    }
    if (method === 'POST' && /^\/?$/.test(pathname)) {
      context.entries = Math.max(countEntries(parsedBody), 1);
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
    const responseHeaders: Record<string, string> = {};
    if (status === 201 && resource?.id) {
      const version = resource.meta?.versionId ? `/_history/${resource.meta.versionId}` : '';
      responseHeaders['location'] = `${this.settings.baseUrl}${FHIR_PREFIX}/${resource.resourceType}/${resource.id}${version}`;
    }
    return fhirResponse(status, payload, responseHeaders);
  }

  private async uploadBinary(contentType: string | null, body: RequestBody): Promise<Response> {
    try {
      const binary = await this.localRepo.createResource<Binary>({
        resourceType: 'Binary',
        contentType: contentType ?? 'application/octet-stream',
        data: Buffer.from(body.bytes()).toString('base64'),
      });
      return fhirResponse(201, this.withStorageUrl(binary));
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      return outcomeResponse(getStatus(outcome), outcome);
    }
  }

  /**
   * The bytes with their content type and length. `fhir/R4/Binary/<id>` is a charged read (the server's
   * binary route reads with the caller's repository); storage URLs are served by the system repository,
   * uncharged. Both answer 404/410 with an OperationOutcome, and 403 for a resource marked forbidden.
   */
  private async downloadBinary(id: string, charged = false): Promise<Response> {
    let binary: Binary;
    try {
      if (charged) {
        binary = await this.localRepo.readResource<Binary>('Binary', id);
      } else {
        this.localRepo.assertReadable('Binary', id);
        binary = this.localRepo.readUncharged<Binary>('Binary', id);
      }
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      return outcomeResponse(getStatus(outcome), outcome);
    }
    const bytes = binary.data ? new Uint8Array(Buffer.from(binary.data, 'base64')) : new Uint8Array(0);
    return bytesResponse(bytes, binary.contentType ?? 'application/octet-stream');
  }

  /** A Binary leaves the server with `url` set to a presigned storage URL for its bytes. */
  private withStorageUrl(resource: Resource): Resource {
    if (resource.resourceType === 'Binary' && resource.id) {
      return { ...resource, url: this.settings.storage.presign(resource.id, resource.meta?.versionId) } as Resource;
    }
    return resource;
  }

  /** Every FHIR response carries the quota's `RateLimit` header when a quota is configured. */
  private withRateLimit(response: Response): Response {
    const header = this.settings.quota.rateLimitHeader();
    if (header) {
      response.headers.set('ratelimit', header);
    }
    return response;
  }
}

/**
 * Requests that write: every POST, PUT, PATCH and DELETE except searches by POST and bot `$execute`
 * (a bot's own writes are separate requests).
 */
function isWriteRequest(method: string, url: string): boolean {
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH' && method !== 'DELETE') {
    return false;
  }
  const pathname = url.split('?')[0];
  return !pathname.endsWith('/_search') && !pathname.endsWith('/$execute');
}

/** Entries of a batch or transaction Bundle, each entry's nested bundle counted too. */
function countEntries(body: unknown): number {
  const bundle = body as Bundle | undefined;
  if (bundle?.resourceType !== 'Bundle' || (bundle.type !== 'batch' && bundle.type !== 'transaction')) {
    return 0;
  }
  let count = 0;
  for (const entry of bundle.entry ?? []) {
    count += 1 + countEntries(entry.resource);
  }
  return count;
}
