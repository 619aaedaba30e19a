// Issue 10 (merge: one file adds facts to a resource another file created) and the plan-first
// writer underneath: stored resources are looked up in bulk, unchanged ones are not written,
// changed ones are updated by id with If-Match, and what a mapping does not write is kept.
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_TABLES, csvFromText, importCsv, loadMappingSet } from '../../src/lib';
import type { MappingFileSource } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { builtInProfileFiles } from '../../src/lib/profiles/builtin';
import { interceptServer } from '../helpers/bot-events';
import { patientsCsv } from '../helpers/generate';
import { guideCsv } from '../helpers/guide';

const admissions = {
  name: 'admissions',
  columns: { admission_id: { required: true }, patient_id: { required: true }, died_at: { required: true } },
  key: ['admission_id'],
  resources: [
    {
      type: 'Patient',
      identifier: { system: '{$base}/patient-id', value: '{patient_id}' },
      elements: { deceasedDateTime: { column: 'died_at', formats: ['YYYY-MM-DD hh:mm'], timeZone: 'Europe/Berlin' } },
    },
  ],
};

function tablesWith(...extra: { name: string }[]): ReturnType<typeof loadMappingSet>['tables'] {
  const files: MappingFileSource[] = [
    ...builtInProfileFiles().guide,
    ...extra.map((m) => ({ name: `${m.name}.mapping.json`, text: JSON.stringify(m) })),
  ];
  return loadMappingSet(files, BUILT_IN_TABLES).tables;
}

const patient = (medplum: LocalMedplum, id: string): Patient =>
  medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === id) as Patient;

describe('merge: a mapping writes only its own elements', () => {
  it('a second file adds a death time to Patients the first created, keeping their name, gender and birth date', async () => {
    const medplum = createLocalMedplum();
    const tables = tablesWith(admissions);
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')), { tables });
    const csv = 'admission_id,patient_id,died_at\nA1,P001,2024-03-01 14:30\n';
    const { report } = await importCsv(medplum, csvFromText('admissions.csv', csv), { tables });
    expect(report).toMatchObject({ rows: 1, updated: 1, failed: 0 });
    expect(patient(medplum, 'P001')).toMatchObject({
      name: [{ given: ['John'], family: 'Doe' }],
      gender: 'male',
      birthDate: '1980-07-15',
      deceasedDateTime: '2024-03-01T14:30:00+01:00',
    });

    // Each file again: nothing changes, in either order.
    const patients = await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')), { tables });
    const again = await importCsv(medplum, csvFromText('admissions.csv', csv), { tables });
    expect(patients.report).toMatchObject({ unchanged: 2, updated: 0 });
    expect(again.report).toMatchObject({ unchanged: 1, updated: 0 });
    expect(patient(medplum, 'P001').deceasedDateTime).toBe('2024-03-01T14:30:00+01:00');
  });

  it('an element added in Medplum survives a re-import; a mapped element is set again', async () => {
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    const john = patient(medplum, 'P001');
    await medplum.updateResource<Patient>({ ...john, telecom: [{ system: 'phone', value: '+1 555 0100' }], name: [{ ...john.name?.[0], given: ['Johnny'] }] });

    const { report } = await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    expect(report).toMatchObject({ updated: 1, unchanged: 1 });
    expect(patient(medplum, 'P001')).toMatchObject({ telecom: [{ system: 'phone', value: '+1 555 0100' }], name: [{ given: ['John'] }] });
  });

  it('replace: the resource becomes what the mapping writes', async () => {
    const files = builtInProfileFiles().guide.map((f) =>
      f.name === 'patients.mapping.json' ? { ...f, text: f.text.replace('"type": "Patient",', '"type": "Patient",\n      "write": "replace",') } : f
    );
    const { tables } = loadMappingSet(files, BUILT_IN_TABLES);
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')), { tables });
    await medplum.updateResource<Patient>({ ...patient(medplum, 'P001'), telecom: [{ system: 'phone', value: '+1 555 0100' }] });
    const { report } = await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')), { tables });
    expect(report).toMatchObject({ updated: 1, unchanged: 1 });
    expect(patient(medplum, 'P001').telecom).toBeUndefined();
  });
});

describe('plan first: what a re-run costs', () => {
  it('1,000 unchanged rows: two lookups, no write, about 0.04 quota points a row', async () => {
    const medplum = createLocalMedplum({ fhirQuota: 1_000_000 });
    const csv = patientsCsv(1000, 3);
    await importCsv(medplum, csvFromText('patients.csv', csv));
    const before = medplum.stats.points;
    const writesBefore = medplum.stats.writes;
    const { report, stats } = await importCsv(medplum, csvFromText('patients.csv', csv));
    expect(report).toMatchObject({ rows: 1000, unchanged: 1000 });
    expect(medplum.stats.writes).toBe(writesBefore);
    expect(stats.requests).toBe(2); // the two lookups
    expect(medplum.stats.points - before).toBe(40);
  });

  it('new rows cost a create each, plus a lookup per 500', async () => {
    const medplum = createLocalMedplum({ fhirQuota: 1_000_000 });
    await importCsv(medplum, csvFromText('patients.csv', patientsCsv(1000, 4)));
    expect(medplum.stats.points / 1000).toBeLessThanOrEqual(100.1);
  });
});

describe('a resource changed between the plan and the write (412)', () => {
  it('plans only that row again, and keeps both changes', async () => {
    const medplum = createLocalMedplum();
    let edited = false;
    interceptServer(medplum, async (url, init, next) => {
      if (!edited && init?.method === 'POST' && /\/fhir\/R4\/?$/.test(url)) {
        const bundle = JSON.parse(new TextDecoder().decode(init.body as Uint8Array)) as Bundle;
        if (bundle.entry?.some((e) => e.request?.method === 'PUT')) {
          // A clinician saves the Patient just before the import's update lands.
          edited = true;
          const jane = patient(medplum, 'P002');
          await medplum.updateResource<Patient>({ ...jane, telecom: [{ system: 'email', value: 'jane@example.org' }] });
        }
      }
      return next();
    });
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    const changed = guideCsv('patients.csv').replace('Jane,Smith', 'Jane,Smith-Jones').replace('John,Doe', 'John,Doe-Ray');
    const { report } = await importCsv(medplum, csvFromText('patients.csv', changed));
    expect(edited).toBe(true);
    expect(report).toMatchObject({ rows: 2, updated: 2, failed: 0 });
    expect(patient(medplum, 'P002')).toMatchObject({ name: [{ family: 'Smith-Jones' }], telecom: [{ value: 'jane@example.org' }] });
    expect(patient(medplum, 'P001').name?.[0]?.family).toBe('Doe-Ray');
  });
});
