/**
 * What a quick migration script does: read the CSV, map each row to a Patient, and write it with
 * one `upsertResource` (a conditional PUT) per row, waiting for each answer before the next.
 * Same parser as the importer (csvFromText), so the difference measured is in how rows are sent.
 */
import type { MedplumClient } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import { csvFromText, defaultSettings, identifierSystem } from '../src/lib';

const GENDER_CODES: Record<string, Patient['gender']> = { M: 'male', F: 'female', O: 'other', U: 'unknown' };

export async function upsertPerRow(medplum: MedplumClient, text: string): Promise<number> {
  const system = identifierSystem(defaultSettings(), 'patient-id');
  let rows = 0;
  let header = true;
  for await (const { fields } of csvFromText('patients.csv', text).records()) {
    if (header) {
      header = false;
      continue;
    }
    const [id, given, family, birthDate, gender] = fields;
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [{ system, value: id }],
      name: [{ family, ...(given ? { given: [given] } : {}) }],
      ...(birthDate ? { birthDate } : {}),
      ...(gender ? { gender: GENDER_CODES[gender] } : {}),
    };
    await medplum.upsertResource(patient, { identifier: `${system}|${id}` });
    rows++;
  }
  return rows;
}
