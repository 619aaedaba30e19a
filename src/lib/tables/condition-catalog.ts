import type { MedplumClient } from '@medplum/core';
import type { CodeSystem, CodeSystemConcept, ConceptMap, ConceptMapGroupElement } from '@medplum/fhirtypes';
import { DependencyNotReadyError } from '../errors';
import type { ImportSettings } from '../settings';
import { identifierSystem } from '../settings';
import type { AggregatePlan, AggregateTable } from './types';

/** ICD-10, the system Medplum's migration guide codes conditions with. */
export const ICD10_SYSTEM = 'http://hl7.org/fhir/sid/icd-10';

/** Letter, two digits (or digit+A/B), optional dot and up to four more characters. */
const ICD10_PATTERN = /^[A-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?$/;

/** Where the catalog lives in Medplum: a CodeSystem of source codes and a ConceptMap to ICD-10. */
export function catalogIdentity(settings: ImportSettings): {
  codeSystemUrl: string;
  conceptMapUrl: string;
  identifierSystem: string;
} {
  return {
    codeSystemUrl: `${settings.identifierBase}/CodeSystem/condition-catalog`,
    conceptMapUrl: `${settings.identifierBase}/ConceptMap/condition-catalog-to-icd10`,
    identifierSystem: identifierSystem(settings, 'terminology-id'),
  };
}

export interface CatalogEntry {
  code: string;
  display: string;
  icd10?: string;
  /** The ICD-10 code's own name ("Essential (primary) hypertension"), when the catalog has it. */
  icd10Display?: string;
}

/** The catalog as stored in Medplum, or undefined when it was never imported. */
export async function readCatalog(
  medplum: MedplumClient,
  settings: ImportSettings
): Promise<{ codeSystem?: CodeSystem; conceptMap?: ConceptMap; entries: Map<string, CatalogEntry> }> {
  const { codeSystemUrl, conceptMapUrl } = catalogIdentity(settings);
  const [codeSystem, conceptMap] = await Promise.all([
    medplum.searchOne('CodeSystem', { url: codeSystemUrl }, { cache: 'no-cache' }),
    medplum.searchOne('ConceptMap', { url: conceptMapUrl }, { cache: 'no-cache' }),
  ]);
  const entries = new Map<string, CatalogEntry>();
  for (const concept of codeSystem?.concept ?? []) {
    entries.set(concept.code, { code: concept.code, display: concept.display ?? concept.code });
  }
  for (const group of conceptMap?.group ?? []) {
    for (const element of group.element ?? []) {
      const entry = element.code ? entries.get(element.code) : undefined;
      const target = element.target?.find((t) => t.code);
      if (entry && target?.code) {
        entry.icd10 = target.code;
        entry.icd10Display = target.display;
      }
    }
  }
  return { codeSystem, conceptMap, entries };
}

/** Loads the catalog for tables that code against it; fails the file when it was never imported. */
export async function requireCatalog(
  medplum: MedplumClient,
  settings: ImportSettings,
  file: string
): Promise<Map<string, CatalogEntry>> {
  const { codeSystem, entries } = await readCatalog(medplum, settings);
  if (!codeSystem) {
    throw new DependencyNotReadyError(
      file,
      'the condition catalog is not in Medplum yet: import the conditions catalog file first',
      'conditions'
    );
  }
  return entries;
}

/**
 * conditions.csv, the catalog: condition_id, condition_name, icd10_code. Kept in Medplum as a
 * CodeSystem (source code + name) and a ConceptMap (source code -> ICD-10), merged with what is
 * there already, so later patient_conditions files are coded from Medplum alone.
 */
export const conditionCatalogTable: AggregateTable<CatalogEntry> = {
  kind: 'aggregate',
  name: 'conditions',
  description: 'Condition catalog: a CodeSystem of source codes with a ConceptMap to ICD-10',
  columns: [
    { name: 'condition_id', required: true, description: 'Source condition code' },
    { name: 'condition_name', required: true, description: 'Human-readable name' },
    { name: 'icd10_code', required: true, description: 'ICD-10 code, e.g. E11.9 (may be empty)' },
    { name: 'icd10_display', required: false, description: "The ICD-10 code's name, e.g. Essential (primary) hypertension (optional)" },
  ],
  key: ['condition_id'],
  dependsOn: [],

  parseRow(row) {
    const code = row.sourceIdValue('condition_id');
    const display = row.text('condition_name', { maxLength: 500 });
    const icd10 = row.optionalText('icd10_code')?.toUpperCase();
    if (icd10 && !ICD10_PATTERN.test(icd10)) {
      row.problem('icd10_code', 'icd10_code is not an ICD-10 code (letter, two digits, optional dot and up to 4 more)');
    }
    const icd10Display = row.optionalText('icd10_display', { maxLength: 500 });
    if (icd10Display && !icd10) {
      row.problem('icd10_display', 'icd10_display names an ICD-10 code, but icd10_code is empty');
    }
    return { code, display, icd10, ...(icd10Display ? { icd10Display } : {}) };
  },

  async plan(medplum, items, { settings }): Promise<AggregatePlan> {
    const identity = catalogIdentity(settings);
    const existing = await readCatalog(medplum, settings);
    const merged = new Map(existing.entries);
    const rowStates: AggregatePlan['rowStates'] = new Map();
    for (const { row, item } of items) {
      const before = merged.get(item.code);
      const state = !before
        ? 'created'
        : before.display === item.display && before.icd10 === item.icd10
          ? 'unchanged'
          : 'updated';
      rowStates.set(row, state);
      merged.set(item.code, item);
    }

    // Keep stored order and append new codes, so an unchanged catalog is byte-for-byte the same
    // resource and the server skips the write.
    const concepts: CodeSystemConcept[] = [...merged.values()].map((e) => ({ code: e.code, display: e.display }));
    const codeSystem: CodeSystem = {
      resourceType: 'CodeSystem',
      url: identity.codeSystemUrl,
      identifier: [{ system: identity.identifierSystem, value: 'condition-catalog' }],
      name: 'LegacyConditionCatalog',
      title: 'Legacy EHR condition catalog',
      status: 'active',
      content: 'complete',
      caseSensitive: true,
      count: concepts.length,
      concept: concepts,
    };
    const elements: ConceptMapGroupElement[] = [...merged.values()]
      .filter((e) => e.icd10)
      .map((e) => ({
        code: e.code,
        display: e.display,
        target: [{ code: e.icd10, ...(e.icd10Display ? { display: e.icd10Display } : {}), equivalence: 'equivalent' }],
      }));
    const conceptMap: ConceptMap = {
      resourceType: 'ConceptMap',
      url: identity.conceptMapUrl,
      identifier: { system: identity.identifierSystem, value: 'condition-catalog-to-icd10' },
      name: 'LegacyConditionCatalogToIcd10',
      title: 'Legacy EHR condition catalog to ICD-10',
      status: 'active',
      sourceUri: identity.codeSystemUrl,
      targetUri: ICD10_SYSTEM,
      group: elements.length ? [{ source: identity.codeSystemUrl, target: ICD10_SYSTEM, element: elements }] : undefined,
    };
    return {
      writes: [
        {
          resource: codeSystem,
          match: { system: identity.identifierSystem, value: 'condition-catalog' },
          label: 'catalog CodeSystem',
          listPath: '/concept',
        },
        {
          resource: conceptMap,
          match: { system: identity.identifierSystem, value: 'condition-catalog-to-icd10' },
          label: 'catalog ConceptMap',
          listPath: '/group/0/element',
        },
      ],
      rowStates,
    };
  },
};
