import type { Filter, SearchRequest, WithId } from '@medplum/core';
import {
  badRequest,
  deepClone,
  evalFhirPath,
  formatSearchQuery,
  getReferenceString,
  getSearchParameter,
  isChainedSearchFilter,
  matchesSearchRequest,
  Operator,
  OperationOutcomeError,
  splitSearchOnComma,
} from '@medplum/core';
import type { Bundle, BundleEntry, BundleLink, Reference, Resource } from '@medplum/fhirtypes';
import type { ResourceStore } from './store';

/** The server's page size when `_count` is absent, and the largest page it serves. */
export const DEFAULT_SEARCH_COUNT = 20;
export const MAX_SEARCH_COUNT = 1000;

export interface SearchContext {
  readonly store: ResourceStore;
  /** e.g. `https://example.com/fhir/R4/`, used to build `Bundle.link` URLs. */
  readonly fhirBaseUrl: string;
  /** Called with the number of stored resources examined, for `LocalMedplum.stats.scanned`. */
  readonly onScan: (examined: number) => void;
}

export interface SearchRunOptions {
  /** Skip `link` and `total`, as the router asks for internal lookups (conditional writes). */
  readonly resourceOnly?: boolean;
}

/**
 * Runs a search the way the server pages it: `_count` defaults to 20 and is capped at 1000, `_offset`
 * selects the page, `Bundle.link` carries `self`, `first`, `previous` and `next` (the last only when more
 * results exist), and `total` is present only when `_total=accurate` or `estimate` is asked for.
 */
export function runSearch<T extends Resource>(
  context: SearchContext,
  request: SearchRequest<T>,
  options?: SearchRunOptions
): Bundle<WithId<T>> {
  const count = Math.min(Math.max(request.count ?? DEFAULT_SEARCH_COUNT, 0), MAX_SEARCH_COUNT);
  const offset = Math.max(request.offset ?? 0, 0);
  const types = request.types?.length ? request.types : [request.resourceType];

  let matches: WithId<Resource>[] = [];
  for (const resourceType of types) {
    matches.push(...findMatches(context, { ...request, resourceType } as SearchRequest));
  }
  if (request.sortRules?.length) {
    matches = sortResources(matches, request);
  }

  const page = matches.slice(offset, offset + count);
  const entry: BundleEntry<WithId<T>>[] = page.map((resource) => ({
    fullUrl: context.fhirBaseUrl + getReferenceString(resource),
    search: { mode: 'match' },
    resource: deepClone(resource) as WithId<T>,
  }));
  if (request.include?.length || request.revInclude?.length) {
    entry.push(...(findIncludes(context, request, page) as BundleEntry<WithId<T>>[]));
  }

  const bundle: Bundle<WithId<T>> = { resourceType: 'Bundle', type: 'searchset' };
  if (entry.length) {
    bundle.entry = entry;
  }
  if (options?.resourceOnly) {
    return bundle;
  }
  if (request.total === 'accurate' || request.total === 'estimate') {
    bundle.total = matches.length;
  }
  bundle.link = buildLinks(context, request, count, offset, matches.length);
  return bundle;
}

/** Returns every match, unpaged and unsorted. Uses an index when the filters allow it. */
export function findMatches(context: SearchContext, request: SearchRequest): WithId<Resource>[] {
  for (const filter of request.filters ?? []) {
    if (isChainedSearchFilter(filter)) {
      throw new OperationOutcomeError(badRequest(`Chained search is not emulated by LocalMedplum: ${filter.code}`));
    }
    // The server refuses a search parameter it does not know, where matching would silently find nothing.
    if (!filter.code.startsWith('_') && !getSearchParameter(request.resourceType, filter.code)) {
      throw new OperationOutcomeError(badRequest(`Unknown search parameter: ${filter.code}`));
    }
  }
  const { store } = context;
  const candidates = indexedCandidates(context, request);
  const matches: WithId<Resource>[] = [];
  let examined = 0;
  if (candidates) {
    for (const [id, narrowed] of candidates) {
      const resource = store.get(request.resourceType, id);
      examined++;
      if (resource && matchesSearchRequest(resource, narrowed ?? request)) {
        matches.push(resource);
      }
    }
  } else {
    for (const resource of store.values(request.resourceType)) {
      examined++;
      if (matchesSearchRequest(resource, request)) {
        matches.push(resource);
      }
    }
  }
  context.onScan(examined);
  return matches;
}

/**
 * Candidate ids when one filter can be answered by a lookup: `_id=...` by key, `identifier=...` by the
 * token index. Candidates are still checked against every filter, so any one exact filter will do;
 * an identifier candidate is checked against the tokens that found it (a lookup of 500 identifiers
 * would otherwise compare each candidate with all 500). Returns undefined when a full scan is needed.
 */
function indexedCandidates(context: SearchContext, request: SearchRequest): Map<string, SearchRequest | undefined> | undefined {
  const filters = request.filters ?? [];
  const idFilter = filters.find((f) => f.code === '_id' && f.operator === Operator.EQUALS);
  if (idFilter) {
    return new Map(splitSearchOnComma(idFilter.value).map((id) => [id, undefined]));
  }
  const identifierFilter = filters.find((f) => f.code === 'identifier' && f.operator === Operator.EQUALS);
  if (!identifierFilter || !context.store.tokens.supports(request.resourceType)) {
    return undefined;
  }
  const tokensById = lookupTokens(context, request.resourceType, identifierFilter);
  if (!tokensById) {
    return undefined;
  }
  const candidates = new Map<string, SearchRequest | undefined>();
  for (const [id, tokens] of tokensById) {
    const value = tokens.map(escapeSearchListItem).join(',');
    candidates.set(id, { ...request, filters: filters.map((f) => (f === identifierFilter ? { ...f, value } : f)) });
  }
  return candidates;
}

/** The ids each token of the filter finds, with the tokens that found them. */
function lookupTokens(context: SearchContext, resourceType: string, filter: Filter): Map<string, string[]> | undefined {
  const tokensById = new Map<string, string[]>();
  for (const token of splitSearchOnComma(filter.value)) {
    const found = context.store.tokens.lookup(resourceType, token);
    if (!found) {
      return undefined;
    }
    for (const id of found) {
      const tokens = tokensById.get(id);
      if (tokens) {
        tokens.push(token);
      } else {
        tokensById.set(id, [token]);
      }
    }
  }
  return tokensById;
}

/** The inverse of splitSearchOnComma for one item: it drops a backslash before any character. */
function escapeSearchListItem(item: string): string {
  return item.replace(/[\\,]/g, '\\$&');
}

/** Sorts by the `_sort` rules, comparing the first value of each rule's search parameter. */
function sortResources(resources: WithId<Resource>[], request: SearchRequest): WithId<Resource>[] {
  const rules = (request.sortRules ?? []).map((rule) => ({
    descending: Boolean(rule.descending),
    expression: getSearchParameter(request.resourceType, rule.code)?.expression,
  }));
  const keyed = resources.map((resource) => ({
    resource,
    keys: rules.map((rule) => (rule.expression ? sortKey(evalFhirPath(rule.expression, resource)[0]) : '')),
  }));
  keyed.sort((a, b) => {
    for (let i = 0; i < rules.length; i++) {
      const cmp = compareKeys(a.keys[i], b.keys[i]);
      if (cmp !== 0) {
        return rules[i].descending ? -cmp : cmp;
      }
    }
    return 0;
  });
  return keyed.map((k) => k.resource);
}

type SortKey = string | number;

function sortKey(value: unknown): SortKey {
  if (value === undefined || value === null) {
    return '';
  }
  if (typeof value === 'number') {
    return value;
  }
  if (typeof value === 'string' || typeof value === 'boolean') {
    return String(value);
  }
  const record = value as Record<string, unknown>;
  // Period and Quantity sort by their start and value; names and codes by their text.
  if ('start' in record) {
    return sortKey(record.start);
  }
  if ('value' in record) {
    return sortKey(record.value);
  }
  if ('family' in record || 'given' in record || 'text' in record) {
    return [record.family, record.given, record.text].flat().filter(Boolean).join(' ');
  }
  return JSON.stringify(value);
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  const sa = String(a);
  const sb = String(b);
  if (sa === sb) {
    return 0;
  }
  return sa < sb ? -1 : 1;
}

function buildLinks(
  context: SearchContext,
  request: SearchRequest,
  count: number,
  offset: number,
  total: number
): BundleLink[] {
  const url = (pageOffset: number): string =>
    context.fhirBaseUrl + request.resourceType + formatSearchQuery({ ...request, count, offset: pageOffset });
  const links: BundleLink[] = [
    { relation: 'self', url: url(offset) },
    { relation: 'first', url: url(0) },
  ];
  if (count > 0 && offset + count < total) {
    links.push({ relation: 'next', url: url(offset + count) });
  }
  if (offset > 0) {
    links.push({ relation: 'previous', url: url(Math.max(offset - count, 0)) });
  }
  return links;
}

/** `_include` and `_revinclude`, one level deep (no `:iterate`). */
function findIncludes(context: SearchContext, request: SearchRequest, page: WithId<Resource>[]): BundleEntry[] {
  const seen = new Set(page.map((r) => getReferenceString(r)));
  const included: WithId<Resource>[] = [];
  const add = (resource: WithId<Resource> | undefined): void => {
    const key = resource && getReferenceString(resource);
    if (resource && key && !seen.has(key)) {
      seen.add(key);
      included.push(resource);
    }
  };

  for (const include of request.include ?? []) {
    const expression = getSearchParameter(include.resourceType, include.searchParam)?.expression;
    if (!expression) {
      continue;
    }
    for (const resource of page) {
      for (const ref of evalFhirPath(expression, resource) as Reference[]) {
        const [type, id] = ref?.reference?.split('/') ?? [];
        if (type && id && (!include.targetType || include.targetType === type)) {
          add(context.store.get(type, id));
        }
      }
    }
  }

  if (request.revInclude?.length && page.length) {
    const references = page.map((r) => getReferenceString(r)).join(',');
    for (const revInclude of request.revInclude) {
      const revRequest: SearchRequest = {
        resourceType: revInclude.resourceType as SearchRequest['resourceType'],
        filters: [{ code: revInclude.searchParam, operator: Operator.EQUALS, value: references }],
      };
      findMatches(context, revRequest).forEach(add);
    }
  }

  return included.map((resource) => ({
    fullUrl: context.fhirBaseUrl + getReferenceString(resource),
    search: { mode: 'include' },
    resource: deepClone(resource),
  }));
}
