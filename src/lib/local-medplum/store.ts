import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { TokenIndex } from './token-index';

/** One entry of a resource's history: a stored version, or a deletion when `resource` is absent. */
export interface Version {
  readonly versionId: string;
  readonly lastUpdated: string;
  readonly resource?: WithId<Resource>;
}

/** What a key looked like before a transaction first touched it, so that it can be put back. */
interface JournalRecord {
  readonly resourceType: string;
  readonly id: string;
  readonly resource: WithId<Resource> | undefined;
  /** The history array object itself: writes only append to it, so truncating restores it. */
  readonly versions: Version[] | undefined;
  readonly versionCount: number;
}

type Journal = Map<string, JournalRecord>;

/**
 * The in-memory storage behind the local repository: current resources, their history and the token
 * index, plus a stack of undo journals for transactions.
 *
 * Stored resource objects are never mutated after they are stored (the repository clones on the way
 * in and out), which is what lets a journal restore a key by putting the old object back.
 */
export class ResourceStore {
  private readonly current = new Map<string, Map<string, WithId<Resource>>>();
  private readonly history = new Map<string, Map<string, Version[]>>();
  private readonly journals: Journal[] = [];
  readonly tokens = new TokenIndex();

  get(resourceType: string, id: string): WithId<Resource> | undefined {
    return this.current.get(resourceType)?.get(id);
  }

  /** All current resources of a type, in insertion order. Callers must not mutate them. */
  values(resourceType: string): Iterable<WithId<Resource>> {
    return this.current.get(resourceType)?.values() ?? [];
  }

  count(resourceType: string): number {
    return this.current.get(resourceType)?.size ?? 0;
  }

  versions(resourceType: string, id: string): readonly Version[] | undefined {
    return this.history.get(resourceType)?.get(id);
  }

  /** True when the resource existed once and was deleted (the server answers 410 Gone for it). */
  isDeleted(resourceType: string, id: string): boolean {
    return !this.get(resourceType, id) && Boolean(this.versions(resourceType, id)?.length);
  }

  /** Stores a new version. The resource must carry `meta.versionId` and `meta.lastUpdated`. */
  put(resource: WithId<Resource>): void {
    const { resourceType, id } = resource;
    this.record(resourceType, id);
    const previous = this.get(resourceType, id);
    if (previous) {
      this.tokens.remove(previous);
    }
    this.tokens.add(resource);
    getOrCreate(this.current, resourceType).set(id, resource);
    this.appendVersion(resourceType, id, {
      versionId: resource.meta?.versionId as string,
      lastUpdated: resource.meta?.lastUpdated as string,
      resource,
    });
  }

  /** Deletes the current version, leaving a deletion entry in the history. */
  remove(resourceType: string, id: string, versionId: string, lastUpdated: string): void {
    const previous = this.get(resourceType, id);
    if (!previous) {
      return;
    }
    this.record(resourceType, id);
    this.tokens.remove(previous);
    this.current.get(resourceType)?.delete(id);
    this.appendVersion(resourceType, id, { versionId, lastUpdated });
  }

  /** Removes a resource and all of its history. */
  expunge(resourceType: string, id: string): void {
    this.record(resourceType, id);
    const previous = this.get(resourceType, id);
    if (previous) {
      this.tokens.remove(previous);
    }
    this.current.get(resourceType)?.delete(id);
    this.history.get(resourceType)?.delete(id);
  }

  clear(): void {
    this.current.clear();
    this.history.clear();
    this.tokens.clear();
    this.journals.length = 0;
  }

  /** Starts recording undo information; transactions nest. */
  beginJournal(): void {
    this.journals.push(new Map());
  }

  /** Keeps the writes. A nested journal hands its records to the enclosing one, which may still roll back. */
  commitJournal(): void {
    const journal = this.journals.pop();
    const parent = this.journals.at(-1);
    if (!journal || !parent) {
      return;
    }
    for (const [key, record] of journal) {
      if (!parent.has(key)) {
        parent.set(key, record);
      }
    }
  }

  /** Undoes every write made since the matching `beginJournal`, and nothing older. */
  rollbackJournal(): void {
    const journal = this.journals.pop();
    if (!journal) {
      return;
    }
    for (const record of [...journal.values()].reverse()) {
      this.restore(record);
    }
  }

  private record(resourceType: string, id: string): void {
    const journal = this.journals.at(-1);
    if (!journal) {
      return;
    }
    const key = resourceType + '/' + id;
    if (journal.has(key)) {
      return;
    }
    const versions = this.history.get(resourceType)?.get(id);
    journal.set(key, {
      resourceType,
      id,
      resource: this.get(resourceType, id),
      versions,
      versionCount: versions?.length ?? 0,
    });
  }

  private restore(record: JournalRecord): void {
    const { resourceType, id } = record;
    const now = this.get(resourceType, id);
    if (now) {
      this.tokens.remove(now);
      this.current.get(resourceType)?.delete(id);
    }
    if (record.resource) {
      this.tokens.add(record.resource);
      getOrCreate(this.current, resourceType).set(id, record.resource);
    }
    if (record.versions) {
      record.versions.length = record.versionCount;
      getOrCreate(this.history, resourceType).set(id, record.versions);
    } else {
      this.history.get(resourceType)?.delete(id);
    }
  }

  private appendVersion(resourceType: string, id: string, version: Version): void {
    const byId = getOrCreate(this.history, resourceType);
    let versions = byId.get(id);
    if (!versions) {
      versions = [];
      byId.set(id, versions);
    }
    versions.push(version);
  }
}

function getOrCreate<V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = map.get(key);
  if (!inner) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}
