import type { MedplumClient } from '@medplum/core';
import { ContentType } from '@medplum/core';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { tokenQuery } from '../fhir/search-values';

/** A resource's source identity: its type and one identifier. */
export interface Identity {
  type: string;
  system: string;
  value: string;
}

/**
 * How identities are compared: servers may match identifier values regardless of case, so two
 * values that differ only in case are the same identity here too (both would match one search).
 */
export function identityKey(type: string, system: string, value: string): string {
  return `${type}|${system}|${value.toLowerCase()}`;
}

/**
 * Longest search body: the server refuses query strings over 70,000 characters (fhir-router;
 * the 5.0 server took 85,000), and a next-page link repeats the query in a URL: stay well under.
 */
export const MAX_SEARCH_CHARS = 60_000;
/** Most identifiers in one search: a page holds at most 1,000 resources, and duplicates may double them. */
export const MAX_SEARCH_TOKENS = 500;

/** Runs a request with the importer's retries (by HTTP status, bounded by the deadline). */
export type Retrying = <T>(what: string, request: () => Promise<T>) => Promise<T>;

/**
 * Looks up, in bulk, the stored resources of many identities: one `POST Type/_search` with an
 * OR list of identifiers per type and slice (20 quota points each, whatever it returns), pages
 * followed. Returns the resources found per identity key; identities without a match are absent.
 */
export async function findByIdentity(
  medplum: MedplumClient,
  retrying: Retrying,
  identities: readonly Identity[],
  onSearch: () => void = () => undefined
): Promise<Map<string, Resource[]>> {
  const found = new Map<string, Resource[]>();
  const byType = new Map<string, Map<string, Identity>>();
  for (const identity of identities) {
    const key = identityKey(identity.type, identity.system, identity.value);
    let group = byType.get(identity.type);
    if (!group) {
      group = new Map();
      byType.set(identity.type, group);
    }
    group.set(key, identity);
  }
  for (const [type, group] of byType) {
    const systems = new Set([...group.values()].map((i) => i.system));
    for (const tokens of slices([...group.values()].map((i) => tokenQuery(i.system, i.value)))) {
      const resources = await searchAll(medplum, retrying, type, tokens, onSearch);
      for (const resource of resources) {
        for (const identifier of identifiersOf(resource)) {
          if (identifier.system && identifier.value && systems.has(identifier.system)) {
            const key = identityKey(type, identifier.system, identifier.value);
            if (group.has(key)) {
              const list = found.get(key) ?? [];
              if (!list.some((r) => r.id === resource.id)) {
                list.push(resource);
              }
              found.set(key, list);
            }
          }
        }
      }
    }
  }
  return found;
}

/** Tokens cut into searches within the size and page limits. */
function slices(tokens: readonly string[]): string[][] {
  const result: string[][] = [];
  let slice: string[] = [];
  let chars = 0;
  for (const token of tokens) {
    if (slice.length && (slice.length >= MAX_SEARCH_TOKENS || chars + token.length + 1 > MAX_SEARCH_CHARS)) {
      result.push(slice);
      slice = [];
      chars = 0;
    }
    slice.push(token);
    chars += token.length + 1;
  }
  if (slice.length) {
    result.push(slice);
  }
  return result;
}

async function searchAll(
  medplum: MedplumClient,
  retrying: Retrying,
  type: string,
  tokens: readonly string[],
  onSearch: () => void
): Promise<Resource[]> {
  // Twice the tokens: identifiers that differ only in case may both match one token.
  const body = `identifier=${tokens.join(',')}&_count=${Math.min(1000, tokens.length * 2)}`;
  const url = medplum.fhirUrl(type, '_search');
  const resources: Resource[] = [];
  await forEachPage(
    medplum,
    retrying,
    `looking up ${tokens.length} ${type} identifiers`,
    () => medplum.post(url, body, ContentType.FORM_URL_ENCODED, { cache: 'no-cache', maxRetries: 0 }),
    onSearch,
    (page) => resources.push(...(page.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])))
  );
  return resources;
}

/**
 * Runs a search and follows its next links, page by page (each a search: `onSearch`). Only this
 * server's own links are followed: a page cannot send the importer (and its token) elsewhere.
 */
export async function forEachPage(
  medplum: MedplumClient,
  retrying: Retrying,
  what: string,
  first: () => Promise<Bundle>,
  onSearch: () => void,
  onPage: (page: Bundle) => void
): Promise<void> {
  onSearch();
  let page: Bundle = await retrying(what, first);
  for (;;) {
    onPage(page);
    const next = page.link?.find((l) => l.relation === 'next')?.url;
    if (!next || !next.startsWith(medplum.getBaseUrl())) {
      return;
    }
    onSearch();
    page = await retrying(`${what} (next page)`, () => medplum.get(next, { cache: 'no-cache', maxRetries: 0 }));
  }
}

/** A resource's identifiers (none when it has no `identifier` element). */
export function identifiersOf(resource: Resource): { system?: string; value?: string }[] {
  const identifier = (resource as { identifier?: unknown }).identifier;
  return (Array.isArray(identifier) ? identifier : identifier ? [identifier] : []) as { system?: string; value?: string }[];
}
