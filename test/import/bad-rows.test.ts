import type { ClinicalImpression, Condition, Encounter, Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_TABLES, csvFromText, DependencyNotReadyError, ImportFileError, importCsv, loadMappingSet } from '../../src/lib';
import { builtInProfileFiles } from '../../src/lib/profiles/builtin';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { guideCsv } from '../helpers/guide';

async function run(medplum: LocalMedplum, name: string, text: string): Promise<ImportReport> {
  return (await importCsv(medplum, csvFromText(name, text))).report;
}

async function withGuideParents(transactions = true): Promise<LocalMedplum> {
  const medplum = createLocalMedplum({ transactions });
  await run(medplum, 'patients.csv', guideCsv('patients.csv'));
  await run(medplum, 'conditions.csv', guideCsv('conditions.csv'));
  return medplum;
}

const errorsOf = (r: ImportReport): [number, string | undefined, string | undefined][] =>
  r.errors.map((e) => [e.row, e.column, e.sourceId]);

describe('row problems fail their rows while the good rows land', () => {
  it('patients: bad codes, dates, missing values, duplicates and ragged rows', async () => {
    const medplum = createLocalMedplum();
    const csv = [
      'patient_id,first_name,last_name,birth_date,gender',
      'P001,John,Doe,1980-07-15,M',
      'P002,Jane,Smith,1985-03-22,X',
      'P003,Ann,,2023-02-30,F',
      'P001,Johnny,Doe,1980-07-15,M',
      'P004,Bob,Jones,1990-01-01',
      '',
      ' P005 , Eve , Adams , 2001-12-31 , f ',
      'P006,Old,Timer,2999-01-01,U',
    ].join('\n');
    const report = await run(medplum, 'patients.csv', csv);
    expect(report).toMatchObject({ table: 'patients', rows: 7, created: 2, failed: 5, updated: 0, unchanged: 0, skipped: 0 });
    expect(errorsOf(report)).toEqual([
      [3, 'gender', 'P002'],
      [4, 'last_name', 'P003'],
      [4, 'birth_date', 'P003'],
      [5, 'patient_id', 'P001'],
      [6, undefined, 'P004'],
      [9, 'birth_date', 'P006'],
    ]);
    expect(report.errors.find((e) => e.row === 5)?.message).toBe('duplicate patient_id P001: first seen at row 2');
    expect(report.errors.find((e) => e.row === 6)?.message).toMatch(/row has 4 fields but the header has 5/);
    const ids = medplum.allResources<Patient>('Patient').map((p) => p.identifier?.[0]?.value).sort();
    expect(ids).toEqual(['P001', 'P005']);
    const eve = medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === 'P005');
    expect(eve).toMatchObject({ name: [{ given: ['Eve'], family: 'Adams' }], gender: 'female', birthDate: '2001-12-31' });
    // Messages name rows, columns and source ids, never the values that were wrong.
    expect(JSON.stringify(report.errors)).not.toMatch(/2023-02-30|2999-01-01|"X"/);
  });

  it('patient_conditions: unknown patients and unknown catalog codes name the id', async () => {
    const medplum = await withGuideParents();
    const csv = [
      'patient_condition_id,patient_id,condition_id,onset_date',
      'PC001,P001,C001,2020-01-10',
      'PC002,P999,C002,2021-06-05',
      'PC003,P002,C999,2019-11-20',
    ].join('\n');
    const report = await run(medplum, 'patient_conditions.csv', csv);
    expect(report).toMatchObject({ rows: 3, created: 1, failed: 2 });
    expect(report.errors).toEqual([
      expect.objectContaining({ row: 3, column: 'patient_id', sourceId: 'PC002', message: expect.stringMatching(/^patient_id P999 is not in Medplum/) }),
      expect.objectContaining({ row: 4, column: 'condition_id', sourceId: 'PC003', message: "condition_id 'C999' is not a known code: one of C001, C002, C003" }),
    ]);
    expect(medplum.allResources<Condition>('Condition').map((c) => c.identifier?.[0]?.value)).toEqual(['PC001']);
  });

  it('patient_conditions before the catalog: the file waits for its parent, nothing written', async () => {
    const medplum = createLocalMedplum();
    await run(medplum, 'patients.csv', guideCsv('patients.csv'));
    const attempt = run(medplum, 'patient_conditions.csv', guideCsv('patient_conditions.csv'));
    await expect(attempt).rejects.toBeInstanceOf(DependencyNotReadyError);
    await expect(attempt).rejects.toThrow(/patient_conditions.csv: code map 'catalog' reads the CodeSystem .*condition-catalog, which is not in Medplum yet: import conditions first/);
    expect(medplum.allResources('Condition')).toEqual([]);
  });

  it('encounters: unknown types fail the row naming the type; the type table is the mapping\'s, edited as data', async () => {
    const medplum = await withGuideParents();
    const csv = ['encounter_id,patient_id,date,type', 'E1,P001,2023-05-01,checkup', 'E2,P001,2023-05-02,walk-in'].join('\n');
    const report = await run(medplum, 'encounters.csv', csv);
    expect(report).toMatchObject({ created: 1, failed: 1 });
    expect(report.errors[0]).toMatchObject({ row: 3, column: 'type', message: "type 'walk-in' is not a known code (code map 'encounter-class')" });

    // A user's copy of the guide profile with one more visit type: no code changes.
    const files = builtInProfileFiles().guide.map((f) => {
      if (f.name !== 'encounters.mapping.json') {
        return f;
      }
      const mapping = JSON.parse(f.text);
      const ambulatory = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' };
      mapping.codes['encounter-class'].values['walk-in'] = ambulatory;
      mapping.codes['encounter-type'].values['walk-in'] = { code: 'walk-in', display: 'Walk-in' };
      return { ...f, text: JSON.stringify(mapping) };
    });
    const { tables } = loadMappingSet(files, BUILT_IN_TABLES);
    const { report: again } = await importCsv(medplum, csvFromText('encounters.csv', csv), { tables });
    expect(again).toMatchObject({ created: 1, unchanged: 1, failed: 0 });
  });

  it('encounters: every class of the guide\'s type table is a v3 ActEncounterCode with its display', async () => {
    const encounters = JSON.parse(builtInProfileFiles().guide.find((f) => f.name === 'encounters.mapping.json')?.text ?? '{}');
    const classes = Object.values(encounters.codes['encounter-class'].values) as { system: string; code: string; display: string }[];
    // The v3 ActEncounterCode value set (http://terminology.hl7.org/ValueSet/v3-ActEncounterCode).
    const allowed = new Set(['AMB', 'EMER', 'FLD', 'HH', 'IMP', 'ACUTE', 'NONAC', 'OBSENC', 'PRENC', 'SS', 'VR']);
    for (const coding of classes) {
      expect(coding.system).toBe('http://terminology.hl7.org/CodeSystem/v3-ActCode');
      expect(allowed.has(coding.code)).toBe(true);
      expect(coding.display.length).toBeGreaterThan(0);
    }
  });
});

describe('an encounter and its note land together', () => {
  // A control character is valid CSV but not a valid FHIR string: the server rejects
  // the ClinicalImpression while the Encounter itself is fine.
  const badNote = ['encounter_id,patient_id,date,type,note', 'E1,P001,2023-05-01,checkup,Fine note', 'E2,P002,2023-05-02,checkup,Bad \u0007 note'].join('\n');
  const fixed = badNote.replace('Bad \u0007 note', 'Fixed note');

  it('in a project with transactions, a failing note leaves no half-written pair', async () => {
    const medplum = await withGuideParents(true);
    const report = await run(medplum, 'encounters.csv', badNote);
    expect(report).toMatchObject({ rows: 2, created: 1, failed: 1 });
    expect(report.errors[0]).toMatchObject({ row: 3, sourceId: 'E2', message: expect.stringMatching(/^encounter and note not written \(the transaction was rolled back\): .*ClinicalImpression\.summary/) });
    expect(medplum.allResources<Encounter>('Encounter').map((e) => e.identifier?.[0]?.value)).toEqual(['E1']);
    expect(medplum.allResources<ClinicalImpression>('ClinicalImpression')).toHaveLength(1);
  });

  it('without transactions, a half-landed pair is reported, and re-running the fixed file completes it', async () => {
    const medplum = await withGuideParents(false);
    const report = await run(medplum, 'encounters.csv', badNote);
    expect(report).toMatchObject({ rows: 2, created: 1, failed: 1 });
    expect(report.errors[0].message).toMatch(/^note not written: .*; the encounter was written without it: fix the row and re-run the file/);
    expect(medplum.allResources('Encounter')).toHaveLength(2);
    expect(medplum.allResources('ClinicalImpression')).toHaveLength(1);

    const rerun = await run(medplum, 'encounters.csv', fixed);
    expect(rerun).toMatchObject({ rows: 2, created: 0, updated: 1, unchanged: 1, failed: 0 });
    expect(medplum.allResources('Encounter')).toHaveLength(2);
    const notes = medplum.allResources<ClinicalImpression>('ClinicalImpression');
    expect(notes.map((n) => n.summary).sort()).toEqual(['Fine note', 'Fixed note']);
  });
});

describe('problems with the file as a whole write nothing', () => {
  it.each([
    ['', /empty/],
    ['patient_id,first_name,last_name\nP1,A,B', /missing required column\(s\): birth_date, gender/],
    ['foo,bar\n1,2', /the header matches no known table/],
    ['patient_id,first_name,last_name,birth_date,gender,gender\nP1,A,B,,,', /column gender appears more than once/],
    ['patient_id,first_name,last_name,birth_date,gender\nP1,"A,B,,\nP2,C,D,,', /unclosed quote in the record starting at row 2/],
  ])('%j', async (csv, problem) => {
    const medplum = createLocalMedplum();
    const attempt = run(medplum, 'bad.csv', csv);
    await expect(attempt).rejects.toBeInstanceOf(ImportFileError);
    await expect(attempt).rejects.toThrow(problem);
    expect(medplum.allResources('Patient')).toEqual([]);
  });

  it('names an unknown table given by name', async () => {
    const medplum = createLocalMedplum();
    await expect(importCsv(medplum, csvFromText('x.csv', guideCsv('patients.csv')), { table: 'people' })).rejects.toThrow(
      "x.csv: unknown table 'people' (known tables: conditions, patients, encounters, patient_conditions)"
    );
  });
});
