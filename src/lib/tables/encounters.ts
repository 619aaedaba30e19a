import type { ClinicalImpression, Encounter } from '@medplum/fhirtypes';
import { ENCOUNTER_CLASS_DISPLAY, identifierSystem } from '../settings';
import type { RowTable } from './types';
import { referenceByIdentifier, single, together } from './write-units';

export const ACT_CODE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** Longest note accepted; a longer one would not fit the 1 MB request with its encounter. */
export const MAX_NOTE_LENGTH = 500_000;

/**
 * encounters.csv: one finished Encounter per row, with its class from the type table. A non-empty
 * note becomes a ClinicalImpression written in the same transaction, with its own identifier, so a
 * re-run updates the note instead of adding another.
 */
export const encountersTable: RowTable = {
  kind: 'rows',
  name: 'encounters',
  description: 'Visits: one FHIR Encounter per row, plus a ClinicalImpression for a non-empty note',
  columns: [
    { name: 'encounter_id', required: true, description: 'Source primary key; becomes Encounter.identifier' },
    { name: 'patient_id', required: true, description: 'The patient (patients.patient_id), already in Medplum' },
    { name: 'date', required: true, description: 'YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][zone]' },
    { name: 'type', required: true, description: 'Legacy visit type; mapped to Encounter.class by the type table' },
    { name: 'note', required: false, description: 'Optional clinical note -> ClinicalImpression' },
  ],
  idColumn: 'encounter_id',
  dependsOn: ['patients'],
  references: { Patient: 'patient_id' },

  mapRow(row, { settings, now, newUuid }) {
    const encounterId = row.sourceIdValue('encounter_id');
    const patientId = row.sourceIdValue('patient_id');
    const date = row.dateTime('date', { notAfter: now });
    const type = row.text('type', { maxLength: 100 });
    const classCode = type ? row.code('type', settings.encounterClassMap) : undefined;
    const note = row.optionalText('note', { maxLength: MAX_NOTE_LENGTH });

    const subject = { reference: referenceByIdentifier('Patient', identifierSystem(settings, 'patient-id'), patientId) };
    const encounterSystem = identifierSystem(settings, 'encounter-id');
    const encounter: Encounter = {
      resourceType: 'Encounter',
      identifier: [{ system: encounterSystem, value: encounterId }],
      status: 'finished',
      class: { system: ACT_CODE_SYSTEM, code: classCode ?? '', display: classCode && ENCOUNTER_CLASS_DISPLAY[classCode] },
      type: [{ coding: [{ system: identifierSystem(settings, 'encounter-type'), code: type }], text: type }],
      subject,
      period: { start: date },
    };
    const encounterWrite = {
      resource: encounter,
      match: { system: encounterSystem, value: encounterId },
      label: 'encounter',
    };
    if (!note) {
      return single(encounterWrite);
    }

    const fullUrl = `urn:uuid:${newUuid()}`;
    const noteSystem = identifierSystem(settings, 'encounter-note-id');
    const impression: ClinicalImpression = {
      resourceType: 'ClinicalImpression',
      identifier: [{ system: noteSystem, value: encounterId }],
      status: 'completed',
      subject,
      encounter: { reference: fullUrl },
      date,
      note: [{ text: note }],
    };
    return together(
      { ...encounterWrite, fullUrl },
      { resource: impression, match: { system: noteSystem, value: encounterId }, label: 'note' }
    );
  },
};
