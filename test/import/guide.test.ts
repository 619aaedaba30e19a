import type { ClinicalImpression, CodeSystem, Condition, ConceptMap, Encounter, Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { csvFromText, defaultSettings, identifierSystem, importCsv } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';

const settings = defaultSettings();

async function importGuide(medplum: LocalMedplum): Promise<ImportReport[]> {
  const reports = [];
  for (const file of GUIDE_FILES) {
    const { report } = await importCsv(medplum, csvFromText(file, guideCsv(file)), { settings });
    reports.push(report);
  }
  return reports;
}

const counts = (r: ImportReport): number[] => [r.rows, r.created, r.updated, r.unchanged, r.failed, r.skipped];

describe.each([true, false])('the guide example tables (transactions: %s)', (transactions) => {
  it('import into exactly the expected, linked and coded resources, and stay that way on re-runs', async () => {
    const medplum = createLocalMedplum({ transactions });
    const first = await importGuide(medplum);
    expect(first.map((r) => r.table)).toEqual(['patients', 'conditions', 'patient_conditions', 'encounters']);
    expect(first.map(counts)).toEqual([
      [2, 2, 0, 0, 0, 0],
      [3, 3, 0, 0, 0, 0],
      [3, 3, 0, 0, 0, 0],
      [2, 2, 0, 0, 0, 0],
    ]);
    expect(first.flatMap((r) => r.errors)).toEqual([]);

    const patients = medplum.allResources<Patient>('Patient');
    const conditions = medplum.allResources<Condition>('Condition');
    const encounters = medplum.allResources<Encounter>('Encounter');
    const notes = medplum.allResources<ClinicalImpression>('ClinicalImpression');
    expect([patients.length, conditions.length, encounters.length, notes.length]).toEqual([2, 3, 2, 2]);

    const john = patients.find((p) => p.identifier?.[0]?.value === 'P001') as Patient;
    expect(john).toMatchObject({
      identifier: [{ system: identifierSystem(settings, 'patient-id'), value: 'P001' }],
      name: [{ given: ['John'], family: 'Doe' }],
      birthDate: '1980-07-15',
      gender: 'male',
    });

    const pc2 = conditions.find((c) => c.identifier?.[0]?.value === 'PC002') as Condition;
    expect(pc2.subject.reference).toBe(`Patient/${john.id}`);
    expect(pc2.onsetDateTime).toBe('2021-06-05');
    expect(pc2.code?.text).toBe('Type 2 diabetes mellitus without complications');
    expect(pc2.code?.coding).toEqual([
      expect.objectContaining({ code: 'C002', display: 'Type 2 diabetes mellitus without complications' }),
      { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'E11.9' },
    ]);

    const [codeSystem] = medplum.allResources<CodeSystem>('CodeSystem');
    const [conceptMap] = medplum.allResources<ConceptMap>('ConceptMap');
    expect(codeSystem.concept?.map((c) => c.code)).toEqual(['C001', 'C002', 'C003']);
    expect(conceptMap.group?.[0]?.element?.map((e) => [e.code, e.target?.[0]?.code])).toEqual([
      ['C001', 'I10'],
      ['C002', 'E11.9'],
      ['C003', 'J45.909'],
    ]);

    const e2 = encounters.find((e) => e.identifier?.[0]?.value === 'E002') as Encounter;
    expect(e2).toMatchObject({ status: 'finished', class: { code: 'EMER' }, period: { start: '2023-05-03' } });
    expect(e2.type?.[0]?.coding?.[0]?.code).toBe('emergency');
    const e2Note = notes.find((n) => n.encounter?.reference === `Encounter/${e2.id}`) as ClinicalImpression;
    expect(e2Note.subject.reference).toBe(e2.subject?.reference);
    expect(e2Note.note?.[0]?.text).toContain('nebulizer');

    const versions = [...patients, ...conditions, ...encounters, ...notes].map((r) => r.meta?.versionId).sort();
    const second = await importGuide(medplum);
    expect(second.map(counts)).toEqual([
      [2, 0, 0, 2, 0, 0],
      [3, 0, 0, 3, 0, 0],
      [3, 0, 0, 3, 0, 0],
      [2, 0, 0, 2, 0, 0],
    ]);
    const after = ['Patient', 'Condition', 'Encounter', 'ClinicalImpression'].flatMap((t) =>
      medplum.allResources(t as 'Patient')
    );
    expect(after.map((r) => r.meta?.versionId).sort()).toEqual(versions);
  });

  it('reports a changed row as updated and leaves the others unchanged', async () => {
    const medplum = createLocalMedplum({ transactions });
    await importGuide(medplum);
    const changed = guideCsv('patients.csv').replace('Jane,Smith', 'Jane,Smith-Jones');
    const { report } = await importCsv(medplum, csvFromText('patients.csv', changed), { settings });
    expect(counts(report)).toEqual([2, 0, 1, 1, 0, 0]);
    const jane = medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === 'P002');
    expect(jane?.name?.[0]?.family).toBe('Smith-Jones');
  });
});
