import { identifierQuery } from '../fhir/search-values';
import type { ResourceWrite, WriteUnit } from './types';

export function single(write: ResourceWrite): WriteUnit {
  return { kind: 'single', write };
}

export function together(...writes: ResourceWrite[]): WriteUnit {
  return { kind: 'transaction', writes };
}

/** A conditional reference: the server resolves it to the one resource with that identifier. */
export function referenceByIdentifier(resourceType: string, system: string, value: string): string {
  return identifierQuery(resourceType, system, value);
}
