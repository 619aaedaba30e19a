import type {
  BinarySource,
  CreateBinaryOptions,
  MedplumClientOptions,
  MedplumRequestOptions,
  WithId,
} from '@medplum/core';
import { ensureTrailingSlash, normalizeCreateBinaryOptions } from '@medplum/core';
import { FhirRouter } from '@medplum/fhir-router';
import type { Binary, Resource } from '@medplum/fhirtypes';
import type { MockClientOptions } from '@medplum/mock';
import { MockClient } from '@medplum/mock';
import type { BotExecuteHandler, BotInvocation } from './bots';
import { BotExecutions } from './bots';
import type { LocalClock } from './clock';
import { SYSTEM_CLOCK } from './clock';
import { ensureDefinitionsIndexed } from './definitions';
import type { FaultOptions } from './faults';
import { FaultInjector } from './faults';
import { FhirQuota } from './quota';
import { LocalRepository } from './repository';
import type { ServerTimeOptions } from './server';
import { LocalFetchClient } from './server';
import { StorageUrls } from './storage';

export interface LocalMedplumOptions
  extends
    Pick<MockClientOptions, 'baseUrl' | 'clientId' | 'storage' | 'cacheTime' | 'profile' | 'project' | 'debug'>,
    Pick<MedplumClientOptions, 'maxRetries' | 'maxRetryTime'> {
  /**
   * Whether transaction Bundles are atomic, as on a project with the `transaction-bundles` feature
   * (default true). Then a transaction is refused whole if it has more than 8 entries while any entry
   * is conditional, or more than 50 updates. When false, transactions run as batches.
   */
  readonly transactions?: boolean;
  /**
   * The per-user FHIR quota in points per minute (the server's default is 50,000), charged per
   * interaction as the server's repository charges it (see FHIR_QUOTA_COSTS). Undefined (the default):
   * no quota and no `RateLimit` header. Can be changed later with `setFhirQuota`.
   */
  readonly fhirQuota?: number;
  /** Injected failures; see FaultOptions. Can be changed later with `setFaults`. */
  readonly faults?: FaultOptions;
  /**
   * Whether writes fail 409 when other write requests are in flight, as on the real server (default
   * true): with 2 write requests in flight each write fails with probability 0.03, with 3 0.08, with 4
   * or more 0.14, drawn from the seeded write stream (see FaultOptions).
   */
  readonly concurrencyConflicts?: boolean;
  /** Simulated round trip added to every request, in milliseconds, spent on the clock (default 0). */
  readonly latencyMs?: number;
  /**
   * Simulated server processing time, spent on the clock after each request is processed (the real
   * server spends about 3 ms per conditional-PUT entry).
   */
  readonly serverTime?: ServerTimeOptions;
  /**
   * The server's clock: the quota window, latency, server time, `meta.lastUpdated` and presigned URL
   * expiry read it (default: wall-clock time and real timers). See test/helpers/clock.ts for a fake one.
   */
  readonly clock?: LocalClock;
  /**
   * Where Binary bytes are served from (default `<baseUrl>storage/`, as a self-hosted server). Hosted
   * Medplum uses another host, e.g. `https://storage.medplum.com/binary/`. Either host's URLs download.
   */
  readonly storageBaseUrl?: string;
}

export interface LocalMedplumStats {
  /** fetch calls made by the client, including those that failed or were answered with an error. */
  readonly requests: number;
  /** Resource versions written (creates, changing updates) and deletions; unchanged updates are not writes. */
  readonly writes: number;
  /** Stored resources examined by searches (a measure of how much scanning lookups cost). */
  readonly scanned: number;
  /** FHIR quota points charged (accepted charges; counted with or without a quota). */
  readonly points: number;
}

/** `createBinary` also takes an ArrayBuffer here. */
export type LocalBinarySource = BinarySource | ArrayBuffer;
export type LocalCreateBinaryOptions = Omit<CreateBinaryOptions, 'data'> & { readonly data: LocalBinarySource };

interface MutableStats {
  requests: number;
  writes: number;
  scanned: number;
}

/** What the server needs from the client side that built it. */
interface LocalParts {
  readonly counters: MutableStats;
  readonly faultHolder: { current: FaultInjector };
  readonly quota: FhirQuota;
  readonly bots: BotExecutions;
}

/**
 * An in-memory Medplum for tests and benchmarks that behaves like the real server where MockClient
 * does not: it starts empty, knows every R4 and Medplum definition, validates writes, resolves
 * conditional references, runs atomic transactions with the server's limits, keeps unchanged
 * updates unversioned, pages searches, serves Binary bytes from presigned storage URLs, charges the
 * FHIR quota per interaction, limits request bodies, answers bot `$execute`, and can inject gateway,
 * server, rate-limit, conflict and network errors. See docs/local-medplum.md.
 */
export class LocalMedplum extends MockClient {
  declare readonly repo: LocalRepository;
  declare readonly client: LocalFetchClient;
  private readonly parts: LocalParts;

  constructor(options: LocalMedplumOptions = {}) {
    ensureDefinitionsIndexed();
    const baseUrl = ensureTrailingSlash(options.baseUrl ?? 'https://example.com/');
    const clock = options.clock ?? SYSTEM_CLOCK;
    const parts: LocalParts = {
      counters: { requests: 0, writes: 0, scanned: 0 },
      faultHolder: { current: new FaultInjector(options.faults) },
      quota: new FhirQuota(options.fhirQuota, clock),
      bots: new BotExecutions(),
    };
    const { counters, faultHolder, quota } = parts;
    const writeConflicts = { probability: 0 };

    const router = new FhirRouter();
    const repo = new LocalRepository({
      fhirBaseUrl: baseUrl + 'fhir/R4/',
      now: () => clock.now(),
      charge: (interaction) => quota.charge(interaction),
      beforeWrite: () => faultHolder.current.beforeWrite(writeConflicts.probability),
      onWrite: () => counters.writes++,
      onScan: (examined) => (counters.scanned += examined),
    });
    const client = new LocalFetchClient(router, repo, {
      baseUrl,
      transactions: options.transactions ?? true,
      latencyMs: options.latencyMs ?? 0,
      serverTime: options.serverTime ?? {},
      clock,
      concurrencyConflicts: options.concurrencyConflicts ?? true,
      faults: () => faultHolder.current,
      quota,
      storage: new StorageUrls(baseUrl, options.storageBaseUrl, clock),
      bots: parts.bots,
      writeConflicts,
      onRequest: () => counters.requests++,
    });

    super({
      baseUrl,
      clientId: options.clientId,
      storage: options.storage,
      cacheTime: options.cacheTime,
      profile: options.profile,
      project: options.project,
      debug: options.debug,
      seedDefaultData: false,
      mockFetchOverride: { router, repo, client },
    });
    this.parts = parts;

    // MockClient does not pass these MedplumClient options on; they are plain fields at run time.
    const retrySettings = this as unknown as { maxRetries: number; maxRetryTime: number };
    if (options.maxRetries !== undefined) {
      retrySettings.maxRetries = options.maxRetries;
    }
    if (options.maxRetryTime !== undefined) {
      retrySettings.maxRetryTime = options.maxRetryTime;
    }
  }

  /** Request, write, scan and quota point counters since construction. */
  get stats(): LocalMedplumStats {
    return { ...this.parts.counters, points: this.parts.quota.pointsCharged };
  }

  /** Replaces the injected faults (undefined: none); the fault streams start again from the seed. */
  setFaults(faults: FaultOptions | undefined): void {
    this.parts.faultHolder.current = new FaultInjector(faults);
  }

  /** Replaces the FHIR quota in points per minute (undefined: none); a fresh window starts at the next charge. */
  setFhirQuota(pointsPerMinute: number | undefined): void {
    this.parts.quota.setLimit(pointsPerMinute);
  }

  /**
   * Makes reads (read, version read, history) and downloads of a resource (`Type/id`) answer 403
   * `forbidden`, as an access policy that hides it would. Searches still find it.
   */
  forbid(reference: string): void {
    this.repo.forbid(reference);
  }

  /**
   * Answers synchronous `$execute` calls: 200 with the handler's resolved value as JSON (an `allOk`
   * OperationOutcome when it resolves undefined), 400 with its message when it rejects. Without a
   * handler, a synchronous `$execute` answers 404. The handler runs outside the server's request queue,
   * so it may call this client itself (run a bot with runBotInVm, for instance).
   */
  onBotExecute(handler: BotExecuteHandler | undefined): void {
    this.parts.bots.onExecute(handler);
  }

  /**
   * The `$execute` calls made with `Prefer: respond-async`, oldest first, for the test to run; the queue
   * is emptied. Their AsyncJobs stay `accepted` until the test updates them.
   */
  takeBotInvocations(): BotInvocation[] {
    return this.parts.bots.take();
  }

  /** Every stored resource of a type, unpaged, read from the repository directly (no request, no fault). */
  allResources<T extends Resource>(resourceType: T['resourceType']): WithId<T>[] {
    return this.repo.allResources<T>(resourceType);
  }

  /**
   * Uploads bytes as the server does: `POST fhir/R4/Binary` with the content type and the raw body.
   * Accepts a string, Uint8Array, ArrayBuffer or Blob. The returned Binary's `url` is a presigned storage
   * URL that `download()` understands (as do `Binary/<id>` and the full FHIR URL). `onProgress` is not
   * supported (it needs XMLHttpRequest) and is ignored.
   */
  override createBinary(
    createBinaryOptions: LocalCreateBinaryOptions,
    requestOptions?: MedplumRequestOptions
  ): Promise<WithId<Binary>>;
  override createBinary(
    data: LocalBinarySource,
    filename: string | undefined,
    contentType: string,
    onProgress?: (e: ProgressEvent) => void,
    options?: MedplumRequestOptions
  ): Promise<WithId<Binary>>;
  override createBinary(
    arg1: LocalBinarySource | LocalCreateBinaryOptions,
    arg2?: string | MedplumRequestOptions,
    arg3?: string,
    arg4?: (e: ProgressEvent) => void,
    arg5?: MedplumRequestOptions
  ): Promise<WithId<Binary>> {
    const { data, filename, contentType } = normalizeCreateBinaryOptions(
      arg1 as BinarySource | CreateBinaryOptions,
      arg2,
      arg3,
      arg4
    );
    const requestOptions = arg5 ?? (typeof arg2 === 'object' ? arg2 : undefined);
    const url = this.fhirUrl('Binary');
    if (filename) {
      url.searchParams.set('_filename', filename);
    }
    // MedplumClient sends strings, Blobs and Uint8Arrays as they are, but would JSON-encode an ArrayBuffer.
    const body: unknown = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    return this.post(url, body, contentType, requestOptions);
  }
}

/** Creates a LocalMedplum; see LocalMedplumOptions. */
export function createLocalMedplum(options?: LocalMedplumOptions): LocalMedplum {
  return new LocalMedplum(options);
}
