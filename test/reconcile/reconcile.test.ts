// Issue 11 item 5: reconciliation of a file with Medplum (eligible rows = imported + rejected +
// skipped, compared by identifier): missing, extra, duplicate resources and unresolved references.
import type { Condition, Patient } from '@medplum/fhirtypes';
import { beforeEach, describe, expect, it } from 'vitest';
import { BUILT_IN_TABLES, csvFromText, importCsv, loadMappingSet } from '../../src/lib';
import { builtInProfileFiles } from '../../src/lib/profiles/builtin';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { isReconciled, reconcileFile } from '../../src/lib/reconcile';
import type { ReconcileReport } from '../../src/lib/reconcile';
import { patientsCsv } from '../helpers/generate';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';

const BASE = 'https://legacy-ehr.example.org/fhir';
const PATIENT_ID = `${BASE}/patient-id`;

const guideDoc = (file: string): ReturnType<typeof csvFromText> => csvFromText(file, guideCsv(file));

async function importGuide(medplum: LocalMedplum): Promise<void> {
  for (const file of GUIDE_FILES) {
    const { report } = await importCsv(medplum, guideDoc(file));
    expect(report.failed, file).toBe(0);
  }
}

function patient(medplum: LocalMedplum, id: string): Patient {
  return medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === id) as Patient;
}

/** The findings only (what a clean reconciliation has none of). */
function findings(report: ReconcileReport): Pick<ReconcileReport, 'missing' | 'extra' | 'duplicates' | 'unresolved'> {
  return { missing: report.missing, extra: report.extra, duplicates: report.duplicates, unresolved: report.unresolved };
}

describe('reconcileFile', () => {
  let medplum: LocalMedplum;
  beforeEach(async () => {
    medplum = createLocalMedplum();
    await importGuide(medplum);
  });

  it('is empty right after a clean import, for every guide file, and writes nothing', async () => {
    const writes = medplum.stats.writes;
    for (const file of GUIDE_FILES) {
      const report = await reconcileFile(medplum, guideDoc(file));
      expect(isReconciled(report), file).toBe(true);
      expect(report.matched, file).toBe(report.mapped);
      expect(report.rows, file).toBe(report.mapped + report.rejected + report.skipped);
      expect(report).toMatchObject({ missingResources: [], extraResources: [], duplicateResources: [], unresolvedReferences: [], rejections: [] });
    }
    expect(medplum.stats.writes).toBe(writes);

    const encounters = await reconcileFile(medplum, guideDoc('encounters.csv'));
    expect(encounters).toMatchObject({ rows: 2, mapped: 2, matched: 2 });
    // The encounter and its note are listed under their systems; the patients they name are looked up.
    expect(encounters.systems).toEqual([
      { type: 'Encounter', system: `${BASE}/encounter-id`, named: 2, stored: 2, listed: true },
      { type: 'ClinicalImpression', system: `${BASE}/encounter-note-id`, named: 2, stored: 2, listed: true },
    ]);
  });

  it('costs searches only: one per system listed and one per 500 referenced identities', async () => {
    const before = medplum.stats.points;
    const patients = await reconcileFile(medplum, guideDoc('patients.csv'));
    expect(patients.searches).toBe(1);
    const conditions = await reconcileFile(medplum, guideDoc('patient_conditions.csv'));
    // Conditions listed (1), their patients looked up (1); the mapping loads the stored catalog itself.
    expect(conditions.searches).toBe(2);
    // 20 points a search, plus the mapping's own two lookups of the stored catalog (CodeSystem, ConceptMap).
    expect(medplum.stats.points - before).toBe(20 * (patients.searches + conditions.searches) + 40);
  });

  it('a Patient deleted in Medplum is missing, and the Conditions naming it do not resolve', async () => {
    await medplum.deleteResource('Patient', patient(medplum, 'P002').id as string);
    const report = await reconcileFile(medplum, guideDoc('patients.csv'));
    expect(findings(report)).toEqual({ missing: 1, extra: 0, duplicates: 0, unresolved: 0 });
    expect(report.matched).toBe(1);
    expect(report.missingResources).toEqual([{ row: 3, sourceId: 'P002', type: 'Patient', label: 'patient', system: PATIENT_ID, value: 'P002' }]);

    const conditions = await reconcileFile(medplum, guideDoc('patient_conditions.csv'));
    expect(findings(conditions)).toEqual({ missing: 0, extra: 0, duplicates: 0, unresolved: 1 });
    expect(conditions.unresolvedReferences).toEqual([
      {
        row: 4,
        sourceId: 'PC003',
        type: 'Condition',
        element: 'subject',
        target: { type: 'Patient', system: PATIENT_ID, value: 'P002' },
        problem: 'not-found',
      },
    ]);
    expect(conditions.matched).toBe(2);
  });

  it('a Patient re-created under a new id leaves the stored Conditions pointing at the old one', async () => {
    const old = patient(medplum, 'P002');
    await medplum.deleteResource('Patient', old.id as string);
    await importCsv(medplum, guideDoc('patients.csv'));
    const conditions = await reconcileFile(medplum, guideDoc('patient_conditions.csv'));
    expect(conditions.unresolvedReferences).toEqual([
      expect.objectContaining({ row: 4, sourceId: 'PC003', element: 'subject', problem: 'stored-differs', ids: [`Patient/${old.id}`] }),
    ]);
  });

  it('a Patient in Medplum under the import\'s identifier system that no row names is extra (and is not deleted)', async () => {
    const stray = await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: PATIENT_ID, value: 'P999' }] });
    await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: 'https://elsewhere.example.org/id', value: 'X1' }] });
    const report = await reconcileFile(medplum, guideDoc('patients.csv'));
    expect(findings(report)).toEqual({ missing: 0, extra: 1, duplicates: 0, unresolved: 0 });
    expect(report.extraResources).toEqual([{ type: 'Patient', id: stray.id, system: PATIENT_ID, value: 'P999' }]);
    expect(report.matched).toBe(2);
    expect(medplum.allResources('Patient')).toHaveLength(4);

    // Without extras (a delta file), the rows' own identities are looked up instead.
    const delta = await reconcileFile(medplum, guideDoc('patients.csv'), { extras: false });
    expect(findings(delta)).toEqual({ missing: 0, extra: 0, duplicates: 0, unresolved: 0 });
    expect(delta.systems).toEqual([expect.objectContaining({ type: 'Patient', listed: false, stored: 2 })]);
  });

  it('two Patients with one identifier are a duplicate; the Conditions naming it are ambiguous', async () => {
    const copy = await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: PATIENT_ID, value: 'P001' }] });
    const report = await reconcileFile(medplum, guideDoc('patients.csv'));
    expect(findings(report)).toEqual({ missing: 0, extra: 0, duplicates: 1, unresolved: 0 });
    expect(report.duplicateResources).toEqual([
      { type: 'Patient', system: PATIENT_ID, value: 'P001', ids: [patient(medplum, 'P001').id, copy.id].sort(), row: 2, sourceId: 'P001' },
    ]);
    expect(report.matched).toBe(1);

    const conditions = await reconcileFile(medplum, guideDoc('patient_conditions.csv'));
    expect(conditions.unresolvedReferences.map((u) => [u.row, u.problem, u.ids?.length])).toEqual([
      [2, 'ambiguous', 2],
      [3, 'ambiguous', 2],
    ]);
  });

  it('a note whose Encounter was deleted points nowhere; the Encounter is missing', async () => {
    const encounter = medplum.allResources('Encounter').find((e) => (e as { identifier?: { value?: string }[] }).identifier?.[0]?.value === 'E001');
    await medplum.deleteResource('Encounter', encounter?.id as string);
    const report = await reconcileFile(medplum, guideDoc('encounters.csv'));
    expect(findings(report)).toEqual({ missing: 1, extra: 0, duplicates: 0, unresolved: 1 });
    expect(report.missingResources).toEqual([expect.objectContaining({ row: 2, sourceId: 'E001', type: 'Encounter' })]);
    expect(report.unresolvedReferences).toEqual([
      expect.objectContaining({ row: 2, type: 'ClinicalImpression', element: 'encounter', problem: 'not-found', target: expect.objectContaining({ type: 'Encounter', value: 'E001' }) }),
    ]);
  });

  it('accounts for rejected and skipped rows; a resource a rejected row names is not extra', async () => {
    const csv = `${guideCsv('patients.csv').trimEnd()}\nP001,John,Doe,1980-07-15,M\n,,,,\n`.replace('P002,Jane,Smith,1985-03-22,F', 'P002,Jane,Smith,1985-13-22,F');
    const report = await reconcileFile(medplum, csvFromText('patients.csv', csv));
    expect(report).toMatchObject({ rows: 4, mapped: 1, rejected: 1, skipped: 2, matched: 1 });
    expect(findings(report)).toEqual({ missing: 0, extra: 0, duplicates: 0, unresolved: 0 });
    expect(report.rejections).toEqual([expect.objectContaining({ row: 3, column: 'birth_date', sourceId: 'P002' })]);
  });

  it('a catalog row whose code is not in the stored catalog is missing', async () => {
    const csv = `${guideCsv('conditions.csv').trimEnd()}\nC004,Migraine,G43.909,"Migraine, unspecified"\n`;
    const report = await reconcileFile(medplum, csvFromText('conditions.csv', csv));
    expect(report).toMatchObject({ rows: 4, mapped: 4, matched: 3, missing: 1 });
    expect(report.missingResources).toEqual([expect.objectContaining({ row: 5, sourceId: 'C004' })]);
    expect(isReconciled(await reconcileFile(medplum, guideDoc('conditions.csv')))).toBe(true);
  });

  it('a mapping that adds to Patients another file owns looks its identities up: the other Patients are not extras', async () => {
    const admissions = {
      name: 'admissions',
      columns: { admission_id: { required: true }, patient_id: { required: true }, died_at: { required: true } },
      key: ['admission_id'],
      resources: [
        {
          type: 'Patient',
          identifier: { system: '{$base}/patient-id', value: '{patient_id}' },
          elements: { deceasedDateTime: { column: 'died_at', formats: ['YYYY-MM-DD'] } },
        },
      ],
    };
    const { tables } = loadMappingSet([...builtInProfileFiles().guide, { name: 'admissions.mapping.json', text: JSON.stringify(admissions) }], BUILT_IN_TABLES);
    await importCsv(medplum, csvFromText('admissions.csv', 'admission_id,patient_id,died_at\nA1,P001,2024-03-01\n'), { tables });
    const doc = csvFromText('admissions.csv', 'admission_id,patient_id,died_at\nA1,P001,2024-03-01\nA2,P003,2024-03-02\n');
    const report = await reconcileFile(medplum, doc, { tables });
    // P002 is in Medplum and no admission names it: not an extra. P003 is in no file: missing.
    expect(findings(report)).toEqual({ missing: 1, extra: 0, duplicates: 0, unresolved: 0 });
    expect(report.missingResources).toEqual([expect.objectContaining({ row: 3, sourceId: 'A2', type: 'Patient', value: 'P003' })]);
    expect(report.systems).toEqual([
      expect.objectContaining({ type: 'Patient', system: PATIENT_ID, named: 2, stored: 1, listed: false, note: expect.stringContaining('not listed') }),
    ]);
  });

  it('caps its lists, keeping the counts exact', async () => {
    for (const id of ['X1', 'X2', 'X3']) {
      await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: PATIENT_ID, value: id }] });
    }
    const report = await reconcileFile(medplum, guideDoc('patients.csv'), { maxListed: 2 });
    expect(report.extra).toBe(3);
    expect(report.extraResources).toHaveLength(2);
    expect(report.omitted).toEqual({ extraResources: 1 });
  });

  it('never lists cell values', async () => {
    await medplum.deleteResource('Patient', patient(medplum, 'P001').id as string);
    const text = JSON.stringify(await reconcileFile(medplum, guideDoc('encounters.csv')));
    for (const cell of ['John', 'Doe', '1980-07-15', 'checkup', 'Routine annual checkup', '2023-05-01']) {
      expect(text).not.toContain(cell);
    }
    const conditions = medplum.allResources<Condition>('Condition');
    expect(conditions).toHaveLength(3);
  });
});

describe('reconcileFile at scale', () => {
  it('1,000 patients: one search (20 points); 600 encounters naming 600 patients: one listing and two lookups', async () => {
    const medplum = createLocalMedplum();
    const patients = csvFromText('patients.csv', patientsCsv(1000));
    const lines = Array.from({ length: 600 }, (_, i) => `E${i + 1},G${String(i + 1).padStart(7, '0')},2023-05-01,checkup,`);
    const encounters = csvFromText('encounters.csv', `encounter_id,patient_id,date,type,note\n${lines.join('\n')}\n`);
    expect((await importCsv(medplum, patients)).report.created).toBe(1000);
    expect((await importCsv(medplum, encounters)).report.created).toBe(600);

    let before = medplum.stats.points;
    const patientReport = await reconcileFile(medplum, patients);
    expect(isReconciled(patientReport)).toBe(true);
    expect(patientReport).toMatchObject({ rows: 1000, matched: 1000, searches: 1 });
    expect(medplum.stats.points - before).toBe(20);

    before = medplum.stats.points;
    const encounterReport = await reconcileFile(medplum, encounters);
    expect(isReconciled(encounterReport)).toBe(true);
    // Encounters listed (1), the 600 patients they name looked up (500 a search: 2).
    expect(encounterReport).toMatchObject({ rows: 600, matched: 600, searches: 3 });
    expect(medplum.stats.points - before).toBe(60);
  }, 60_000);
});
