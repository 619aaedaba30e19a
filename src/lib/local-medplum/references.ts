import type { SearchRequest, WithId } from '@medplum/core';
import { badRequest, createReference, OperationOutcomeError, parseSearchRequest } from '@medplum/core';
import type { Reference, Resource } from '@medplum/fhirtypes';

/** `Type?criteria`: a reference the server resolves by searching. */
const CONDITIONAL_REFERENCE = /^[A-Z][A-Za-z]*\?/;

export type SearchFn = (request: SearchRequest) => WithId<Resource>[];

/**
 * Rewrites every conditional reference in a resource (`{ reference: 'Patient?identifier=sys|P001' }`)
 * to the one resource it matches, as the server does on every write. As on the server, the whole
 * Reference is replaced by `{ reference: 'Type/id', display }` of the match; zero or several matches
 * fail the write with 400.
 *
 * Works on the JSON tree rather than the typed schema: any object whose `reference` is a conditional
 * string is a Reference in practice. `meta` and contained resources' own `id`s are left alone.
 *
 * @param resource - The resource to rewrite in place (a private copy).
 * @param search - Finds the matches for one conditional reference (count limited by the caller).
 */
export function resolveConditionalReferences(resource: Resource, search: SearchFn): void {
  visit(resource as unknown as Record<string, unknown>, resource.resourceType, search);
}

function visit(node: Record<string, unknown>, path: string, search: SearchFn): void {
  for (const [key, value] of Object.entries(node)) {
    if (key === 'meta' || value === null || typeof value !== 'object') {
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        if (item && typeof item === 'object') {
          const itemPath = `${path}.${key}[${index}]`;
          const replacement = resolve(item as Reference, itemPath, search);
          if (replacement) {
            value[index] = replacement;
          } else {
            visit(item as Record<string, unknown>, itemPath, search);
          }
        }
      });
    } else {
      const childPath = `${path}.${key}`;
      const replacement = resolve(value as Reference, childPath, search);
      if (replacement) {
        node[key] = replacement;
      } else {
        visit(value as Record<string, unknown>, childPath, search);
      }
    }
  }
}

function resolve(candidate: Reference, path: string, search: SearchFn): Reference | undefined {
  const reference = candidate.reference;
  if (typeof reference !== 'string' || !CONDITIONAL_REFERENCE.test(reference)) {
    return undefined;
  }
  const request = parseSearchRequest(reference);
  request.sortRules = undefined;
  request.count = 2;
  const matches = search(request);
  if (matches.length !== 1) {
    const problem = matches.length ? 'matched multiple' : 'did not match any';
    throw new OperationOutcomeError(badRequest(`Conditional reference '${reference}' ${problem} resources`, path));
  }
  return createReference(matches[0]);
}
