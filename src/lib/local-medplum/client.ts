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
import { ensureDefinitionsIndexed } from './definitions';
import type { FaultOptions } from './faults';
import { FaultInjector } from './faults';
import { LocalRepository } from './repository';
import { LocalFetchClient } from './server';

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
  /** Injected failures; see FaultOptions. Can be changed later with `setFaults`. */
  readonly faults?: FaultOptions;
  /** Simulated round trip added to every request, in milliseconds (default 0). */
  readonly latencyMs?: number;
}

export interface LocalMedplumStats {
  /** fetch calls made by the client, including those that failed or were answered with an error. */
  readonly requests: number;
  /** Resource versions written (creates, changing updates) and deletions; unchanged updates are not writes. */
  readonly writes: number;
  /** Stored resources examined by searches (a measure of how much scanning lookups cost). */
  readonly scanned: number;
}

/** `createBinary` also takes an ArrayBuffer here. */
export type LocalBinarySource = BinarySource | ArrayBuffer;
export type LocalCreateBinaryOptions = Omit<CreateBinaryOptions, 'data'> & { readonly data: LocalBinarySource };

interface MutableStats {
  requests: number;
  writes: number;
  scanned: number;
}

/**
 * An in-memory Medplum for tests and benchmarks that behaves like the real server where MockClient
 * does not: it starts empty, knows every R4 and Medplum definition, validates writes, resolves
 * conditional references, runs atomic transactions with the server's limits, keeps unchanged
 * updates unversioned, pages searches, serves Binary bytes, and can inject rate limits, server
 * errors and network errors. See docs/local-medplum.md.
 */
export class LocalMedplum extends MockClient {
  declare readonly repo: LocalRepository;
  declare readonly client: LocalFetchClient;
  private readonly counters: MutableStats;
  private readonly faultHolder: { current: FaultInjector };

  constructor(options: LocalMedplumOptions = {}) {
    ensureDefinitionsIndexed();
    const baseUrl = ensureTrailingSlash(options.baseUrl ?? 'https://example.com/');
    const counters: MutableStats = { requests: 0, writes: 0, scanned: 0 };
    const faultHolder = { current: new FaultInjector(options.faults) };

    const router = new FhirRouter();
    const repo = new LocalRepository({
      fhirBaseUrl: baseUrl + 'fhir/R4/',
      beforeWrite: () => faultHolder.current.consumeWrite(),
      onWrite: () => counters.writes++,
      onScan: (examined) => (counters.scanned += examined),
    });
    const client = new LocalFetchClient(router, repo, {
      baseUrl,
      transactions: options.transactions ?? true,
      latencyMs: options.latencyMs ?? 0,
      faults: () => faultHolder.current,
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
    this.counters = counters;
    this.faultHolder = faultHolder;

    // MockClient does not pass these MedplumClient options on; they are plain fields at run time.
    const retrySettings = this as unknown as { maxRetries: number; maxRetryTime: number };
    if (options.maxRetries !== undefined) {
      retrySettings.maxRetries = options.maxRetries;
    }
    if (options.maxRetryTime !== undefined) {
      retrySettings.maxRetryTime = options.maxRetryTime;
    }
  }

  /** Request, write and scan counters since construction. */
  get stats(): LocalMedplumStats {
    return { ...this.counters };
  }

  /** Replaces the injected faults (undefined: none). The write quota starts a fresh window. */
  setFaults(faults: FaultOptions | undefined): void {
    this.faultHolder.current = new FaultInjector(faults);
  }

  /** Every stored resource of a type, unpaged, read from the repository directly (no request, no fault). */
  allResources<T extends Resource>(resourceType: T['resourceType']): WithId<T>[] {
    return this.repo.allResources<T>(resourceType);
  }

  /**
   * Uploads bytes as the server does: `POST fhir/R4/Binary` with the content type and the raw body.
   * Accepts a string, Uint8Array, ArrayBuffer or Blob. The returned Binary's `url` is a storage URL
   * that `download()` understands (as do `Binary/<id>` and the full FHIR URL). `onProgress` is not
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
