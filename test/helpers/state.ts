import type { Reference, Resource } from '@medplum/fhirtypes';
import type { LocalMedplum } from '../../src/lib/local-medplum';

export const IMPORTED_TYPES = ['Patient', 'CodeSystem', 'ConceptMap', 'Condition', 'Encounter', 'ClinicalImpression'] as const;

/**
 * The store's content independent of server-assigned ids: each resource without id/meta, its
 * references rewritten to the referenced resource's first identifier, sorted. Two imports of the
 * same data give equal states whatever the ids and however many retries happened.
 */
export function canonicalState(medplum: LocalMedplum): string[] {
  const byReference = new Map<string, string>();
  const all = IMPORTED_TYPES.flatMap((type) => medplum.allResources(type as 'Patient') as Resource[]);
  for (const resource of all) {
    const identifier = [(resource as { identifier?: unknown }).identifier].flat()[0] as { system?: string; value?: string } | undefined;
    byReference.set(`${resource.resourceType}/${resource.id}`, `${resource.resourceType}|${identifier?.system}|${identifier?.value}`);
  }
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) {
      return value.map(rewrite);
    }
    if (value && typeof value === 'object') {
      const entries = Object.entries(value).filter(([key]) => key !== 'id' && key !== 'meta');
      const out = Object.fromEntries(entries.map(([key, v]) => [key, rewrite(v)]));
      const reference = (value as Reference).reference;
      if (typeof reference === 'string') {
        out.reference = byReference.get(reference) ?? `UNRESOLVED ${reference}`;
      }
      return out;
    }
    return value;
  };
  return all.map((r) => JSON.stringify(rewrite(r))).sort();
}
