import type { Condition } from '@medplum/fhirtypes';
import { identifierSystem } from '../settings';
import type { CatalogEntry } from './condition-catalog';
import { catalogIdentity, ICD10_SYSTEM, requireCatalog } from './condition-catalog';
import type { RowTable } from './types';
import { referenceByIdentifier, single } from './write-units';

/**
 * patient_conditions.csv: one Condition per row, coded from the catalog stored in Medplum and
 * linked to its Patient by the patient's source identifier (resolved by the server).
 */
export const patientConditionsTable: RowTable<Map<string, CatalogEntry>> = {
  kind: 'rows',
  name: 'patient_conditions',
  description: 'Diagnoses: one FHIR Condition per row, coded from the condition catalog',
  columns: [
    { name: 'patient_condition_id', required: true, description: 'Source primary key; becomes Condition.identifier' },
    { name: 'patient_id', required: true, description: 'The patient (patients.patient_id), already in Medplum' },
    { name: 'condition_id', required: true, description: 'A code of the condition catalog' },
    { name: 'onset_date', required: true, description: 'YYYY-MM-DD, not in the future (may be empty)' },
  ],
  idColumn: 'patient_condition_id',
  dependsOn: ['patients', 'conditions'],
  references: { Patient: 'patient_id' },

  prepare: (medplum, settings, file) => requireCatalog(medplum, settings, file),

  mapRow(row, { settings, lookups: catalog, now }) {
    const id = row.sourceIdValue('patient_condition_id');
    const patientId = row.sourceIdValue('patient_id');
    const conditionId = row.text('condition_id');
    const onset = row.date('onset_date', { required: false, notAfter: now });
    const entry = catalog.get(conditionId);
    if (conditionId && !entry) {
      row.problem('condition_id', `condition_id ${conditionId} is not in the condition catalog`);
    }

    const system = identifierSystem(settings, 'patient-condition-id');
    const condition: Condition = {
      resourceType: 'Condition',
      identifier: [{ system, value: id }],
      subject: { reference: referenceByIdentifier('Patient', identifierSystem(settings, 'patient-id'), patientId) },
      code: {
        coding: [
          { system: catalogIdentity(settings).codeSystemUrl, code: conditionId, display: entry?.display },
          ...(entry?.icd10 ? [{ system: ICD10_SYSTEM, code: entry.icd10 }] : []),
        ],
        text: entry?.display,
      },
      ...(onset ? { onsetDateTime: onset } : {}),
    };
    return single({ resource: condition, match: { system, value: id }, label: 'condition' });
  },
};
