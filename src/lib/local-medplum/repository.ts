import type { SearchRequest, WithId } from '@medplum/core';
import {
  allOk,
  badRequest,
  deepClone,
  gone,
  notFound,
  OperationOutcomeError,
  preconditionFailed,
  stringify,
  validateResource,
} from '@medplum/core';
import type {
  CreateResourceOptions,
  DeleteResourceOptions,
  ReadHistoryOptions,
  SearchOptions,
  TransactionOptions,
  UpdateResourceOptions,
} from '@medplum/fhir-router';
import { FhirRepository, MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, Meta, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { resolveConditionalReferences } from './references';
import type { SearchContext } from './search';
import { findMatches, runSearch } from './search';
import { ResourceStore } from './store';

/** What the repository needs from its surroundings. */
export interface RepositoryHooks {
  /** e.g. `https://example.com/fhir/R4/`, for `Bundle.link` and `fullUrl`. */
  readonly fhirBaseUrl: string;
  /** Called before every create, update and delete; throws to refuse it (the write quota). */
  readonly beforeWrite: () => void;
  /** Called after every stored version or deletion. */
  readonly onWrite: () => void;
  /** Called with the number of stored resources a search examined. */
  readonly onScan: (examined: number) => void;
}

/** Meta fields that the server owns: whatever a client sends for them is replaced. */
const SERVER_META_FIELDS = ['versionId', 'lastUpdated', 'author', 'project', 'compartment'] as const;

/** The server returns at most this many history entries. */
const MAX_HISTORY_ENTRIES = 100;

/**
 * A MemoryRepository that behaves like the Medplum server's repository:
 * - validates every create and update (`validateResource`), 400 with the issues otherwise;
 * - resolves conditional references (`Patient?identifier=...`) in resource bodies on every write;
 * - assigns new ids on create (a client `id` is ignored unless the router assigned it in a batch);
 * - an update that changes nothing keeps the stored version (same versionId and lastUpdated);
 * - update of an id that never existed is 404, read of a deleted resource is 410;
 * - `withTransaction` is atomic: a journal undoes the writes when the callback throws, nesting-aware;
 * - searches page like the server and use a token index for `identifier` and a key lookup for `_id`.
 *
 * It keeps its own storage (see ResourceStore) and overrides every method of MemoryRepository that
 * touches storage, so MemoryRepository's private maps stay empty.
 */
export class LocalRepository extends MemoryRepository {
  readonly store = new ResourceStore();
  private readonly hooks: RepositoryHooks;
  private readonly searchContext: SearchContext;

  constructor(hooks: RepositoryHooks) {
    super();
    this.hooks = hooks;
    this.searchContext = { store: this.store, fhirBaseUrl: hooks.fhirBaseUrl, onScan: hooks.onScan };
  }

  override clear(): void {
    this.store.clear();
  }

  override async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions): Promise<WithId<T>> {
    this.hooks.beforeWrite();
    // The server always generates the id; only the batch processor's pre-assigned id is kept, so that
    // `urn:uuid` references within the bundle resolve to it.
    const id = options?.assignedId && resource.id ? resource.id : this.generateId();
    if (this.store.get(resource.resourceType, id)) {
      throw new OperationOutcomeError(badRequest('Assigned ID is already in use'));
    }
    const prepared = this.prepareForWrite(resource, id);
    return deepClone(this.storeVersion(prepared) as WithId<T>);
  }

  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id'));
    }
    this.hooks.beforeWrite();
    const { resourceType, id } = resource;
    const existing = this.store.get(resourceType, id);
    if (!existing && !this.store.isDeleted(resourceType, id)) {
      // Only super admins may create by id on the server; for a bot or a user it is "not found".
      throw new OperationOutcomeError(notFound);
    }
    if (options?.ifMatch && existing?.meta?.versionId !== options.ifMatch) {
      throw new OperationOutcomeError(preconditionFailed);
    }
    const prepared = this.prepareForWrite(resource, id);
    if (existing && sameContent(withoutServerMeta(existing), withoutServerMeta(prepared))) {
      // The server does not write a version for an update that changes nothing.
      return deepClone(existing as WithId<T>);
    }
    return deepClone(this.storeVersion(prepared) as WithId<T>);
  }

  override async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    this.hooks.beforeWrite();
    const existing = this.readStored(resourceType, id);
    if (options?.ifMatch && existing.meta?.versionId !== options.ifMatch) {
      throw new OperationOutcomeError(preconditionFailed);
    }
    this.store.remove(resourceType, id, this.generateId(), new Date().toISOString());
    this.hooks.onWrite();
  }

  override async expungeResource(resourceType: string, id: string): Promise<void> {
    this.store.expunge(resourceType, id);
  }

  override async expungeResources(resourceType: string, ids: string[]): Promise<void> {
    for (const id of ids) {
      this.store.expunge(resourceType, id);
    }
  }

  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<WithId<T>> {
    return deepClone(this.readStored(resourceType, id) as WithId<T>);
  }

  override async readHistory<T extends Resource>(
    resourceType: string,
    id: string,
    options?: ReadHistoryOptions
  ): Promise<Bundle<WithId<T>>> {
    const versions = this.store.versions(resourceType, id);
    if (!versions?.length) {
      throw new OperationOutcomeError(notFound);
    }
    const offset = options?.offset ?? 0;
    const limit = Math.min(options?.limit ?? MAX_HISTORY_ENTRIES, MAX_HISTORY_ENTRIES);
    const newestFirst = [...versions].reverse().slice(offset, offset + limit);
    const entry = newestFirst.map((version): BundleEntry<WithId<T>> => {
      const outcome: OperationOutcome = version.resource ? allOk : gone;
      return {
        fullUrl: this.hooks.fhirBaseUrl + resourceType + '/' + id,
        request: { method: 'GET', url: `${resourceType}/${id}/_history/${version.versionId}` },
        response: { status: version.resource ? '200' : '410', outcome },
        resource: version.resource ? (deepClone(version.resource) as WithId<T>) : undefined,
      };
    });
    return { resourceType: 'Bundle', type: 'history', total: versions.length, entry };
  }

  override async readVersion<T extends Resource>(resourceType: string, id: string, vid: string): Promise<WithId<T>> {
    const version = this.store.versions(resourceType, id)?.find((v) => v.versionId === vid);
    if (!version) {
      throw new OperationOutcomeError(notFound);
    }
    if (!version.resource) {
      throw new OperationOutcomeError(gone);
    }
    return deepClone(version.resource as WithId<T>);
  }

  override async search<T extends Resource>(
    searchRequest: SearchRequest<T>,
    options?: SearchOptions
  ): Promise<Bundle<WithId<T>>> {
    return runSearch(this.searchContext, searchRequest, options);
  }

  /**
   * MemoryRepository's own conditionalCreate writes around `createResource` (no validation, no
   * quota); the generic FhirRepository version searches and then calls `createResource`, like the
   * server, inside `withTransaction`.
   */
  override conditionalCreate<T extends Resource>(
    resource: T,
    search: SearchRequest<T>,
    options?: CreateResourceOptions
  ): Promise<{ resource: WithId<T>; outcome: OperationOutcome }> {
    const generic = FhirRepository.prototype.conditionalCreate as (
      this: FhirRepository,
      resource: T,
      search: SearchRequest<T>,
      options?: CreateResourceOptions
    ) => Promise<{ resource: WithId<T>; outcome: OperationOutcome }>;
    return generic.call(this, resource, search, options);
  }

  /**
   * Runs the callback atomically: if it throws, every write it made is undone (and only those: a
   * transaction nested in a batch entry rolls back itself, not the batch). Requests are processed
   * one at a time by the local server, so no other request can interleave with an open transaction.
   */
  override async withTransaction<TResult>(
    callback: (repo: this) => Promise<TResult>,
    _options?: TransactionOptions
  ): Promise<TResult> {
    this.store.beginJournal();
    let result: TResult;
    try {
      result = await callback(this);
    } catch (err) {
      this.store.rollbackJournal();
      throw err;
    }
    this.store.commitJournal();
    return result;
  }

  /** Every current resource of a type, unpaged, as copies. For tests and benchmarks. */
  allResources<T extends Resource>(resourceType: T['resourceType']): WithId<T>[] {
    return Array.from(this.store.values(resourceType), (r) => deepClone(r) as WithId<T>);
  }

  private readStored(resourceType: string, id: string): WithId<Resource> {
    const resource = this.store.get(resourceType, id);
    if (resource) {
      return resource;
    }
    throw new OperationOutcomeError(this.store.isDeleted(resourceType, id) ? gone : notFound);
  }

  /**
   * Turns the client's resource into what the server would store, minus the new version stamp:
   * a clean JSON copy with the given id, server meta fields dropped, conditional references
   * resolved, and validated.
   */
  private prepareForWrite(resource: Resource, id: string): WithId<Resource> {
    const copy = JSON.parse(stringify(resource)) as WithId<Resource>;
    copy.id = id;
    if (copy.resourceType === 'Binary') {
      // `url` is not an R4 Binary element: the server adds it to responses (a storage URL) and
      // ignores it on the way back in, so a read-modify-write of a Binary must not fail on it.
      delete (copy as { url?: string }).url;
    }
    const stripped = withoutServerMeta(copy);
    resolveConditionalReferences(stripped, (request) => findMatches(this.searchContext, request));
    // The server keeps a Binary's bytes in storage, not in the resource, so their size is not a
    // resource limit (uploads of any size pass; JSON bodies are capped elsewhere).
    validateResource(stripped.resourceType === 'Binary' ? { ...stripped, data: undefined } : stripped);
    return stripped;
  }

  private storeVersion(prepared: WithId<Resource>): WithId<Resource> {
    const meta: Meta = { ...prepared.meta, versionId: this.generateId(), lastUpdated: new Date().toISOString() };
    const stored = { ...prepared, meta } as WithId<Resource>;
    this.store.put(stored);
    this.hooks.onWrite();
    return stored;
  }
}

/** A shallow copy without the server-owned meta fields (and without `meta` if nothing else is left). */
function withoutServerMeta<T extends Resource>(resource: T): T {
  if (!resource.meta) {
    return resource;
  }
  const meta: Record<string, unknown> = { ...resource.meta };
  for (const field of SERVER_META_FIELDS) {
    delete meta[field];
  }
  const copy = { ...resource };
  if (Object.keys(meta).length) {
    copy.meta = meta as Meta;
  } else {
    delete copy.meta;
  }
  return copy;
}

/** Deep equality of two JSON values, ignoring key order. */
function sameContent(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return false;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameContent(item, b[i]))
    );
  }
  const objA = a as Record<string, unknown>;
  const objB = b as Record<string, unknown>;
  const keys = Object.keys(objA);
  if (keys.length !== Object.keys(objB).length) {
    return false;
  }
  return keys.every((key) => Object.hasOwn(objB, key) && sameContent(objA[key], objB[key]));
}

