// Issue 10 (merge: one file adds facts to a resource another file created) and the plan-first
// writer underneath: stored resources are looked up in bulk, unchanged ones are not written,
// changed ones are updated by id with If-Match, and what a mapping does not write is kept.
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_TABLES, csvFromText, importCsv, loadMappingSet, resolveSettings } from '../../src/lib';
import type { MappingFileSource } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { builtInProfileFiles } from '../../src/lib/profiles/builtin';
import { interceptServer } from '../helpers/bot-events';
import { patientsCsv } from '../helpers/generate';
import { guideCsv } from '../helpers/guide';
import { botAccessPolicyResources } from '../../src/setup/bot-access-policy';
import { enforceAccessPolicy } from '../bots/access-policy-enforcer';

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

  it('an element added in Medplum survives a re-import, which then writes nothing', async () => {
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    await medplum.updateResource<Patient>({ ...patient(medplum, 'P001'), telecom: [{ system: 'phone', value: '+1 555 0100' }] });

    const { report } = await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    expect(report).toMatchObject({ unchanged: 2 });
    const changed = guideCsv('patients.csv').replace('P001,John,Doe', 'P001,Jon,Doe');
    expect((await importCsv(medplum, csvFromText('patients.csv', changed))).report).toMatchObject({ updated: 1, unchanged: 1 });
    expect(patient(medplum, 'P001')).toMatchObject({ telecom: [{ system: 'phone', value: '+1 555 0100' }], name: [{ given: ['Jon'] }] });
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

describe('own only the mapped elements: conflicts', () => {
  const changedFamily = async (medplum: LocalMedplum, family: string): Promise<void> => {
    const john = patient(medplum, 'P001');
    await medplum.updateResource<Patient>({ ...john, name: [{ ...john.name?.[0], family }] });
  };

  it('a mapped element changed in Medplum is kept and reported as a conflict, by path; the rest of the row is written', async () => {
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    await changedFamily(medplum, 'Doe-Corrected');

    // The source changed the birth date too: that is written, the family name is kept.
    const source = guideCsv('patients.csv').replace('P001,John,Doe,1980-07-15', 'P001,John,Doe,1980-07-16');
    const { report } = await importCsv(medplum, csvFromText('patients.csv', source));
    expect(report).toMatchObject({ rows: 2, conflict: 1, unchanged: 1, updated: 0, failed: 0 });
    expect(report.conflicts).toEqual([{ row: 2, sourceId: 'P001', paths: ['name[0].family'] }]);
    expect(JSON.stringify(report)).not.toContain('Doe-Corrected');
    expect(patient(medplum, 'P001')).toMatchObject({ name: [{ family: 'Doe-Corrected' }], birthDate: '1980-07-16' });

    // Still a conflict on the next run; nothing is written for it.
    const writes = medplum.stats.writes;
    const again = await importCsv(medplum, csvFromText('patients.csv', source));
    expect(again.report).toMatchObject({ conflict: 1, unchanged: 1 });
    expect(medplum.stats.writes).toBe(writes);

    // onConflict: overwrite replaces it, and the element is the import's again.
    const settings = resolveSettings({ onConflict: 'overwrite' });
    const overwritten = await importCsv(medplum, csvFromText('patients.csv', source), { settings });
    expect(overwritten.report).toMatchObject({ updated: 1, unchanged: 1, conflict: 0 });
    expect(patient(medplum, 'P001').name?.[0]?.family).toBe('Doe');
    const after = await importCsv(medplum, csvFromText('patients.csv', source));
    expect(after.report).toMatchObject({ unchanged: 2, conflict: 0 });
  });

  it('no conflict when Medplum already holds what the source now says, or when the clinician\'s value is left unchanged by the source', async () => {
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    await changedFamily(medplum, 'Doe-Ray');
    const agreed = guideCsv('patients.csv').replace('John,Doe', 'John,Doe-Ray');
    const { report } = await importCsv(medplum, csvFromText('patients.csv', agreed));
    // Nothing to change but the record of what the import wrote (written once).
    expect(report).toMatchObject({ updated: 1, unchanged: 1, conflict: 0 });
    expect((await importCsv(medplum, csvFromText('patients.csv', agreed))).report).toMatchObject({ unchanged: 2 });
    // The element is now what the import wrote: a later source change is written.
    const later = guideCsv('patients.csv').replace('John,Doe', 'John,Doe-Ray-Me');
    expect((await importCsv(medplum, csvFromText('patients.csv', later))).report).toMatchObject({ updated: 1, conflict: 0 });
  });

  it('ON_CONFLICT and onConflict are checked', () => {
    expect(() => resolveSettings({ onConflict: 'merge' })).toThrow('onConflict must be "keep" or "overwrite"');
    const secrets = { ON_CONFLICT: { name: 'ON_CONFLICT', valueString: 'overwrite' } };
    expect(resolveSettings({}, secrets).onConflict).toBe('overwrite');
  });
});

describe('plan mode', () => {
  it('writes nothing, and predicts exactly what the import then does, row by row, with the element paths', async () => {
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', patientsCsv(30, 5)));
    const john = medplum.allResources<Patient>('Patient')[3];
    await medplum.updateResource<Patient>({ ...john, name: [{ ...john.name?.[0], family: 'Edited' }] });
    const lines = patientsCsv(40, 5).split('\n');
    lines[2] = lines[2].replace(/,[MFOU]$/, ',Z'); // fails
    lines[6] = lines[6].replace(/(\d{4})-(\d{2})-(\d{2})/, '1950-01-01'); // a changed birth date
    lines[4] = lines[4].replace(/^([^,]+),([^,]*),([^,]*),/, '$1,$2,Changed,'); // changes the family name written by the import...
    const csv = lines.join('\n');

    const writes = medplum.stats.writes;
    const planned: Record<number, [string, string[] | undefined]> = {};
    const { report: plan } = await importCsv(medplum, csvFromText('patients.csv', csv), {
      plan: true,
      onRowResult: (r) => (planned[r.row] = [r.state, r.changes ?? r.paths]),
    });
    expect(medplum.stats.writes).toBe(writes);
    expect(plan.plan).toBe(true);

    const done: Record<number, [string, string[] | undefined]> = {};
    const { report } = await importCsv(medplum, csvFromText('patients.csv', csv), {
      onRowResult: (r) => (done[r.row] = [r.state, r.paths]),
    });
    const counts = (r: typeof report): number[] => [r.created, r.updated, r.unchanged, r.conflict, r.failed, r.skipped];
    expect(counts(plan)).toEqual(counts(report));
    expect(plan).toMatchObject({ created: 10, failed: 1 });
    expect(Object.fromEntries(Object.entries(planned).map(([row, [state]]) => [row, state]))).toEqual(
      Object.fromEntries(Object.entries(done).map(([row, [state]]) => [row, state]))
    );
    expect(planned[7]).toEqual(['updated', ['birthDate']]);
    expect(planned[40]?.[0]).toBe('created');
    expect(plan.conflict).toBe(1);
  });
});

describe('two importers racing on the same new rows', () => {
  it.each([
    ['', false],
    [", under the bot's access policy (delete on the types it writes)", true],
  ])('create each resource once: the later check removes the copies, whoever checks first%s', async (_, withPolicy) => {
    const medplum = createLocalMedplum();
    const enforcer = withPolicy ? enforceAccessPolicy(medplum, { resourceType: 'AccessPolicy', resource: botAccessPolicyResources() }) : undefined;
    if (enforcer) {
      enforcer.enabled = true;
    }
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    // Both importers look the rows up before either writes: both plans say "create".
    let lookups = 0;
    let release: () => void = () => undefined;
    const bothLooked = new Promise<void>((resolve) => (release = resolve));
    interceptServer(medplum, async (url, init, next) => {
      if (init?.method === 'POST' && url.endsWith('/Encounter/_search') && ++lookups === 2) {
        release();
      }
      if (init?.method === 'POST' && /\/fhir\/R4\/?$/.test(url)) {
        await bothLooked;
      }
      return next();
    });
    const csv = guideCsv('encounters.csv');
    const [a, b] = await Promise.all([
      importCsv(medplum, csvFromText('encounters.csv', csv)),
      importCsv(medplum, csvFromText('encounters.csv', csv)),
    ]);
    expect(medplum.allResources('Encounter')).toHaveLength(2);
    expect(medplum.allResources('ClinicalImpression')).toHaveLength(2);
    expect(a.report.created + b.report.created).toBe(2);
    expect(a.report.unchanged + b.report.unchanged).toBe(2);
    // Every note points at the kept encounter of its row.
    const encounters = new Set(medplum.allResources('Encounter').map((e) => `Encounter/${e.id}`));
    for (const note of medplum.allResources<{ resourceType: 'ClinicalImpression'; encounter?: { reference?: string } } & import('@medplum/fhirtypes').ClinicalImpression>('ClinicalImpression')) {
      expect(encounters.has(note.encounter?.reference ?? '')).toBe(true);
    }
    const again = await importCsv(medplum, csvFromText('encounters.csv', csv));
    expect(again.report).toMatchObject({ unchanged: 2, failed: 0 });
    expect(enforcer?.denied ?? []).toEqual([]);
    if (enforcer) {
      expect([...enforcer.seen]).toContain('Encounter:delete');
    }
  });
});
