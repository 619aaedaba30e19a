import { evalFhirPath, getSearchParameter } from '@medplum/core';
import type { Identifier, Resource } from '@medplum/fhirtypes';

/** Reads the identifiers that the `identifier` search parameter would see on a resource. */
type IdentifierReader = (resource: Resource) => Identifier[];

/**
 * An index from `identifier` token to resource ids, per resource type.
 *
 * Conditional PUTs (`PUT Patient?identifier=sys|val`) search before every write; a full scan makes an
 * import quadratic (this is what makes MockClient take minutes for 10,000 rows). The server answers
 * those searches from its token table; this index plays that part.
 *
 * The index only narrows the candidates: the search still checks each candidate with
 * `matchesSearchRequest`, so keys are lower-cased to stay a superset whatever case rules matching uses.
 */
export class TokenIndex {
  /** resourceType -> key -> ids. Keys: `s\u0001<system>\u0001<value>` and `v\u0001<value>`. */
  private readonly byType = new Map<string, Map<string, Set<string>>>();
  private readonly readers = new Map<string, IdentifierReader | null>();

  /** True when the resource type has an `identifier` search parameter, i.e. when the index can answer. */
  supports(resourceType: string): boolean {
    return this.getReader(resourceType) !== null;
  }

  add(resource: Resource & { id: string }): void {
    this.forEachKey(resource, (key) => {
      let byKey = this.byType.get(resource.resourceType);
      if (!byKey) {
        byKey = new Map();
        this.byType.set(resource.resourceType, byKey);
      }
      let ids = byKey.get(key);
      if (!ids) {
        ids = new Set();
        byKey.set(key, ids);
      }
      ids.add(resource.id);
    });
  }

  remove(resource: Resource & { id: string }): void {
    const byKey = this.byType.get(resource.resourceType);
    if (!byKey) {
      return;
    }
    this.forEachKey(resource, (key) => {
      const ids = byKey.get(key);
      if (ids) {
        ids.delete(resource.id);
        if (ids.size === 0) {
          byKey.delete(key);
        }
      }
    });
  }

  /**
   * Candidate ids for one `identifier` token as written in a search: `system|value`, `|value` or `value`.
   * Returns undefined when the index cannot answer (e.g. `system|` alone), so the caller scans instead.
   */
  lookup(resourceType: string, token: string): ReadonlySet<string> | undefined {
    const bar = token.indexOf('|');
    let key: string;
    if (bar < 0) {
      key = valueKey(token);
    } else {
      const system = token.slice(0, bar);
      const value = token.slice(bar + 1);
      if (!value) {
        return undefined;
      }
      // `|value` asks for identifiers without a system; the value-only key is a superset of those.
      key = system ? systemValueKey(system, value) : valueKey(value);
    }
    return this.byType.get(resourceType)?.get(key) ?? EMPTY_SET;
  }

  clear(): void {
    this.byType.clear();
  }

  private forEachKey(resource: Resource, callback: (key: string) => void): void {
    const reader = this.getReader(resource.resourceType);
    if (!reader) {
      return;
    }
    for (const identifier of reader(resource)) {
      if (typeof identifier?.value !== 'string') {
        continue;
      }
      callback(valueKey(identifier.value));
      if (identifier.system) {
        callback(systemValueKey(identifier.system, identifier.value));
      }
    }
  }

  private getReader(resourceType: string): IdentifierReader | null {
    let reader = this.readers.get(resourceType);
    if (reader === undefined) {
      reader = buildReader(resourceType);
      this.readers.set(resourceType, reader);
    }
    return reader;
  }
}

const EMPTY_SET: ReadonlySet<string> = new Set();

function valueKey(value: string): string {
  return 'v\u0001' + value.toLowerCase();
}

function systemValueKey(system: string, value: string): string {
  return 's\u0001' + system.toLowerCase() + '\u0001' + value.toLowerCase();
}

/**
 * Builds the reader from the search parameter's own FHIRPath expression, so the index sees exactly
 * what a search would. The common `<Type>.identifier` case reads the property directly (it runs on
 * every write, and FHIRPath evaluation costs far more than a property read).
 */
function buildReader(resourceType: string): IdentifierReader | null {
  const expression = getSearchParameter(resourceType, 'identifier')?.expression;
  if (!expression) {
    return null;
  }
  if (expression === `${resourceType}.identifier`) {
    return (resource) => {
      const value = (resource as { identifier?: Identifier | Identifier[] }).identifier;
      if (!value) {
        return [];
      }
      return Array.isArray(value) ? value : [value];
    };
  }
  return (resource) => evalFhirPath(expression, resource) as Identifier[];
}
