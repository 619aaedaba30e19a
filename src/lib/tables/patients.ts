import type { Patient } from '@medplum/fhirtypes';
import { identifierSystem } from '../settings';
import type { RowTable } from './types';
import { single } from './write-units';

/** Legacy gender codes -> FHIR administrative gender. */
export const GENDER_CODES: Record<string, Patient['gender']> = {
  M: 'male',
  F: 'female',
  O: 'other',
  U: 'unknown',
};

/** patients.csv: one Patient per row, identified by patient_id. */
export const patientsTable: RowTable = {
  kind: 'rows',
  name: 'patients',
  description: 'Patients: one FHIR Patient per row',
  columns: [
    { name: 'patient_id', required: true, description: 'Source primary key; becomes Patient.identifier' },
    { name: 'first_name', required: true, description: 'Given name (may be empty)' },
    { name: 'last_name', required: true, description: 'Family name' },
    { name: 'birth_date', required: true, description: 'YYYY-MM-DD, not in the future (may be empty)' },
    { name: 'gender', required: true, description: 'M, F, O or U (may be empty)' },
  ],
  idColumn: 'patient_id',
  dependsOn: [],

  mapRow(row, { settings, now }) {
    const patientId = row.sourceIdValue('patient_id');
    const given = row.optionalText('first_name', { maxLength: 200 });
    const family = row.text('last_name', { maxLength: 200 });
    const birthDate = row.date('birth_date', { required: false, notAfter: now });
    const gender = row.code('gender', GENDER_CODES, { required: false });

    const system = identifierSystem(settings, 'patient-id');
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [{ system, value: patientId }],
      name: [{ family, ...(given ? { given: [given] } : {}) }],
      ...(birthDate ? { birthDate } : {}),
      ...(gender ? { gender } : {}),
    };
    return single({ resource: patient, match: { system, value: patientId }, label: 'patient' });
  },
};
