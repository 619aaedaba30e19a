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

/** A stored resource without what the server manages (id, meta) and the displays it adds to resolved references. */
function withoutServerFields(resource: object): unknown {
  const { id: _id, meta: _meta, ...rest } = resource as Record<string, unknown>;
  return JSON.parse(JSON.stringify(rest), (key, value) =>
    value && typeof value === 'object' && typeof value.reference === 'string' ? { reference: value.reference } : value
  );
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

    // Field for field as in the guide's own examples (packages/examples/src/migration/migration-pipelines.ts).
    const base = settings.identifierBase;
    const pc2 = conditions.find((c) => c.identifier?.[0]?.value === 'PC002') as Condition;
    expect(withoutServerFields(pc2)).toEqual({
      resourceType: 'Condition',
      identifier: [{ system: `${base}/patient-condition-id`, value: 'PC002' }],
      subject: { reference: `Patient/${john.id}` },
      code: {
        coding: [
          { system: `${base}/CodeSystem/condition-catalog`, code: 'C002', display: 'Type 2 diabetes mellitus without complications' },
          { system: 'http://hl7.org/fhir/sid/icd-10', code: 'E11.9', display: 'Type 2 diabetes mellitus without complications' },
        ],
        text: 'Type 2 diabetes mellitus without complications',
      },
      onsetDateTime: '2021-06-05',
    });

    const [codeSystem] = medplum.allResources<CodeSystem>('CodeSystem');
    const [conceptMap] = medplum.allResources<ConceptMap>('ConceptMap');
    expect(codeSystem.concept?.map((c) => c.code)).toEqual(['C001', 'C002', 'C003']);
    expect(conceptMap.group?.[0]?.element?.map((e) => [e.code, e.target?.[0]?.code, e.target?.[0]?.display])).toEqual([
      ['C001', 'I10', 'Essential (primary) hypertension'],
      ['C002', 'E11.9', 'Type 2 diabetes mellitus without complications'],
      ['C003', 'J45.909', 'Unspecified asthma, uncomplicated'],
    ]);

    const jane = patients.find((p) => p.identifier?.[0]?.value === 'P002') as Patient;
    const e2 = encounters.find((e) => e.identifier?.[0]?.value === 'E002') as Encounter;
    expect(withoutServerFields(e2)).toEqual({
      resourceType: 'Encounter',
      identifier: [{ system: `${base}/encounter-id`, value: 'E002' }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER', display: 'emergency' },
      type: [{ coding: [{ system: `${base}/encounter-type`, code: 'emergency', display: 'Emergency' }] }],
      subject: { reference: `Patient/${jane.id}` },
      period: { start: '2023-05-03' },
    });
    const e2Note = notes.find((n) => n.encounter?.reference === `Encounter/${e2.id}`) as ClinicalImpression;
    expect(withoutServerFields(e2Note)).toEqual({
      resourceType: 'ClinicalImpression',
      identifier: [{ system: `${base}/encounter-note-id`, value: 'E002' }],
      status: 'completed',
      subject: { reference: `Patient/${jane.id}` },
      encounter: { reference: `Encounter/${e2.id}` },
      effectiveDateTime: '2023-05-03',
      summary: 'Asthma exacerbation, treated with nebulizer; discharged home.',
    });

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
