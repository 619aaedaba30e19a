import type { Operation, SearchRequest, WithId } from '@medplum/core';
import {
  allOk,
  applyPatch,
  badRequest,
  deepClone,
  fhirpathPatchTypedValue,
  forbidden,
  gone,
  normalizeOperationOutcome,
  notFound,
  OperationOutcomeError,
  parseFhirPathPatchParameters,
  preconditionFailed,
  stringify,
  toTypedValue,
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
import type { Bundle, BundleEntry, Meta, OperationOutcome, Parameters, Resource } from '@medplum/fhirtypes';
import type { FhirInteraction } from './quota';
import { resolveConditionalReferences } from './references';
import type { SearchContext } from './search';
import { findMatches, runSearch } from './search';
import { ResourceStore } from './store';

/** What the repository needs from its surroundings. */
export interface RepositoryHooks {
  /** e.g. `https://example.com/fhir/R4/`, for `Bundle.link` and `fullUrl`. */
  readonly fhirBaseUrl: string;
  /** The server's clock in epoch milliseconds, for `meta.lastUpdated`. */
  readonly now: () => number;
  /** Charges one interaction to the FHIR quota, where the server's repository does; throws the 429. */
  readonly charge: (interaction: FhirInteraction) => void;
  /**
   * Called before every create, update (changing or not), patch and delete is stored, after validation;
   * throws to fail it (injected and concurrency conflicts, 409).
   */
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
 * - searches page like the server and use a token index for `identifier` and a key lookup for `_id`;
 * - charges the FHIR quota where the server's repository does: each create, update, patch and delete 100
 *   points (an unchanged update too), each search 20 (also each conditional reference resolved in a
 *   body), each read and version read 1, each history read 10;
 * - reads of resources marked forbidden (`forbid`) answer 403, as under an access policy.
 *
 * It keeps its own storage (see ResourceStore) and overrides every method of MemoryRepository that
 * touches storage, so MemoryRepository's private maps stay empty.
 */
export class LocalRepository extends MemoryRepository {
  readonly store = new ResourceStore();
  private readonly hooks: RepositoryHooks;
  private readonly searchContext: SearchContext;
  private readonly forbidden = new Set<string>();
  private systemDepth = 0;

  constructor(hooks: RepositoryHooks) {
    super();
    this.hooks = hooks;
    this.searchContext = { store: this.store, fhirBaseUrl: hooks.fhirBaseUrl, onScan: hooks.onScan };
  }

  override clear(): void {
    this.store.clear();
  }

  override async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions): Promise<WithId<T>> {
    this.charge('WRITE');
    // The server always generates the id; only the batch processor's pre-assigned id is kept, so that
    // `urn:uuid` references within the bundle resolve to it.
    const id = options?.assignedId && resource.id ? resource.id : this.generateId();
    if (this.store.get(resource.resourceType, id)) {
      throw new OperationOutcomeError(badRequest('Assigned ID is already in use'));
    }
    const prepared = this.prepareForWrite(resource, id);
    this.beforeWrite();
    return deepClone(this.storeVersion(prepared) as WithId<T>);
  }

  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    // The server charges the write before it looks at the resource, and whether or not it changes anything.
    this.charge('WRITE');
    return this.updateUncharged(resource, options);
  }

  override async patchResource<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
    patch: Operation[] | Parameters,
    options?: UpdateResourceOptions
  ): Promise<WithId<T>> {
    // One write, like the server (MemoryRepository's version would also charge a read).
    this.charge('WRITE');
    const resource = deepClone(this.readStored(resourceType, id)) as WithId<T>;
    try {
      if (Array.isArray(patch)) {
        const errors = applyPatch(resource, patch).filter(Boolean);
        if (errors.length) {
          throw new OperationOutcomeError(badRequest(errors.map((e) => (e as Error).message).join('\n')));
        }
      } else if (patch.parameter) {
        fhirpathPatchTypedValue(toTypedValue(resource), parseFhirPathPatchParameters(patch));
      }
    } catch (err) {
      throw new OperationOutcomeError(normalizeOperationOutcome(err));
    }
    return this.updateUncharged(resource, options);
  }

  private async updateUncharged<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id'));
    }
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
    // A conflicting transaction fails even an update that would change nothing.
    this.beforeWrite();
    if (existing && sameContent(withoutServerMeta(existing), withoutServerMeta(prepared))) {
      // The server does not write a version for an update that changes nothing.
      return deepClone(existing as WithId<T>);
    }
    return deepClone(this.storeVersion(prepared) as WithId<T>);
  }

  override async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    this.charge('WRITE');
    const existing = this.readStored(resourceType, id);
    if (options?.ifMatch && existing.meta?.versionId !== options.ifMatch) {
      throw new OperationOutcomeError(preconditionFailed);
    }
    this.beforeWrite();
    this.store.remove(resourceType, id, this.generateId(), this.timestamp());
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
    this.charge('READ');
    this.assertReadable(resourceType, id);
    return deepClone(this.readStored(resourceType, id) as WithId<T>);
  }

  override async readHistory<T extends Resource>(
    resourceType: string,
    id: string,
    options?: ReadHistoryOptions
  ): Promise<Bundle<WithId<T>>> {
    this.charge('HISTORY');
    this.assertReadable(resourceType, id);
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
    this.charge('READ');
    this.assertReadable(resourceType, id);
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
    this.charge('SEARCH');
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

  /** Makes reads and downloads of `Type/id` answer 403, as an access policy that hides it would. */
  forbid(reference: string): void {
    this.forbidden.add(reference);
  }

  /** Throws the server's 403 when the resource is marked forbidden. */
  assertReadable(resourceType: string, id: string): void {
    if (this.forbidden.has(resourceType + '/' + id)) {
      throw new OperationOutcomeError(forbidden);
    }
  }

  /**
   * Runs work as the server's system repository does (job bookkeeping, storage downloads): nothing is
   * charged to the quota and no conflict is drawn. Only for work that runs inside the server's
   * one-request-at-a-time queue, so that no other request's writes fall inside it.
   */
  async asSystem<TResult>(callback: () => Promise<TResult>): Promise<TResult> {
    this.systemDepth++;
    try {
      return await callback();
    } finally {
      this.systemDepth--;
    }
  }

  /** The stored resource, or the server's 404/410; no charge (the caller has charged what applies). */
  readUncharged<T extends Resource>(resourceType: string, id: string): WithId<T> {
    return deepClone(this.readStored(resourceType, id) as WithId<T>);
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
    // The server resolves each conditional reference with a search, charged like any other.
    resolveConditionalReferences(stripped, (request) => {
      this.charge('SEARCH');
      return findMatches(this.searchContext, request);
    });
    // The server keeps a Binary's bytes in storage, not in the resource, so their size is not a
    // resource limit (uploads of any size pass; JSON bodies are capped elsewhere).
    validateResource(stripped.resourceType === 'Binary' ? { ...stripped, data: undefined } : stripped);
    return stripped;
  }

  private timestamp(): string {
    return new Date(this.hooks.now()).toISOString();
  }

  private charge(interaction: FhirInteraction): void {
    if (this.systemDepth === 0) {
      this.hooks.charge(interaction);
    }
  }

  private beforeWrite(): void {
    if (this.systemDepth === 0) {
      this.hooks.beforeWrite();
    }
  }

  private storeVersion(prepared: WithId<Resource>): WithId<Resource> {
    const meta: Meta = { ...prepared.meta, versionId: this.generateId(), lastUpdated: this.timestamp() };
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

