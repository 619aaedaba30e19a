import type { DocumentReference, Patient } from '@medplum/fhirtypes';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';
import { BotRunError, runBotInVm } from '../helpers/vm-runner';

// The built bundle, run the way Medplum's vmcontext runtime runs it.
const distPath = join(__dirname, '..', '..', 'dist', 'import-csv.js');

async function execute(medplum: LocalMedplum, input: unknown, contentType = 'application/json'): Promise<ImportReport> {
  const { result } = await runBotInVm({ distPath, medplum, event: { input, contentType } });
  return result as ImportReport;
}

async function upload(medplum: LocalMedplum, file: string): Promise<DocumentReference> {
  const attachment = await medplum.createAttachment({ data: guideCsv(file), contentType: 'text/csv', filename: file });
  return medplum.createResource<DocumentReference>({
    resourceType: 'DocumentReference',
    status: 'current',
    description: file,
    content: [{ attachment: { ...attachment, title: file } }],
  });
}

const summary = (r: ImportReport): string => `${r.table}:${r.rows}/${r.created}/${r.updated}/${r.unchanged}/${r.failed}`;

const expectGuideState = (medplum: LocalMedplum): void => {
  expect(
    ['Patient', 'Condition', 'Encounter', 'ClinicalImpression'].map((t) => medplum.allResources(t as 'Patient').length)
  ).toEqual([2, 3, 2, 2]);
};

describe('the built import-csv bot, by each way Medplum calls it', () => {
  let medplum: LocalMedplum;
  beforeEach(() => {
    medplum = createLocalMedplum();
  });

  it('$execute with text/plain: input is the CSV text', async () => {
    const reports = [];
    for (const file of GUIDE_FILES) {
      reports.push(summary(await execute(medplum, guideCsv(file), 'text/plain')));
    }
    expect(reports).toEqual(['patients:2/2/0/0/0', 'conditions:3/3/0/0/0', 'patient_conditions:3/3/0/0/0', 'encounters:2/2/0/0/0']);
    expectGuideState(medplum);
    for (const file of GUIDE_FILES) {
      expect((await execute(medplum, guideCsv(file), 'text/plain')).created).toBe(0);
    }
    expectGuideState(medplum);
  });

  it('$execute with JSON { csv, table } and settings', async () => {
    const report = await execute(medplum, {
      csv: guideCsv('patients.csv'),
      table: 'patients',
      fileName: 'export-2024.csv',
      identifierBase: 'https://ehr.example.com',
    });
    expect(report).toMatchObject({ file: 'export-2024.csv', table: 'patients', created: 2 });
    const [patient] = medplum.allResources<Patient>('Patient');
    expect(patient.identifier?.[0]?.system).toBe('https://ehr.example.com/patient-id');
  });

  it('$execute with JSON { document: { reference } } to an upload (DocumentReference or Binary)', async () => {
    for (const file of GUIDE_FILES) {
      const doc = await upload(medplum, file);
      const reference =
        file === 'conditions.csv'
          ? `Binary/${/\/storage\/(?:Binary\/)?([A-Za-z0-9\-.]+)/.exec(doc.content[0].attachment.url as string)?.[1]}`
          : `DocumentReference/${doc.id}`;
      // A DocumentReference is an upload: imported under its Task, answered with the job's result.
      const result = (await execute(medplum, { document: { reference } })) as unknown as ImportReport & { report?: ImportReport };
      const report = reference.startsWith('Binary/') ? result : (result.report as ImportReport);
      expect(report.failed, `${file} via ${reference}`).toBe(0);
    }
    expectGuideState(medplum);
  });

  it('a Subscription: input is the DocumentReference (imported under its Task) or Binary that changed', async () => {
    for (const file of GUIDE_FILES.slice(0, 2)) {
      const doc = await upload(medplum, file);
      const { result } = await runBotInVm({ distPath, medplum, event: { input: doc, contentType: 'application/fhir+json' } });
      expect(result).toMatchObject({ outcome: 'completed', task: expect.stringMatching(/^Task\//), report: { failed: 0 } });
    }
    for (const file of GUIDE_FILES.slice(2)) {
      const binary = await medplum.createBinary({ data: guideCsv(file), contentType: 'text/csv' });
      expect((await execute(medplum, binary, 'application/fhir+json')).failed).toBe(0);
    }
    expectGuideState(medplum);
  });

  it('text/csv or octet-stream bodies (which arrive as {}) get an error saying how to call instead', async () => {
    const attempt = execute(medplum, {}, 'text/csv');
    await expect(attempt).rejects.toBeInstanceOf(BotRunError);
    await expect(attempt).rejects.toThrow(/text\/csv and application\/octet-stream bodies to bots as \{\}.*text\/plain/);
  });

  it('whole-file problems throw a message naming the file and column; logs carry no cell values', async () => {
    const attempt = runBotInVm({
      distPath,
      medplum,
      event: { input: { csv: 'patient_id,first_name\nP001,John', fileName: 'people.csv' }, contentType: 'application/json' },
    });
    await expect(attempt).rejects.toThrow(/people\.csv: the header looks like the 'patients' table but is missing required column\(s\): last_name, birth_date, gender/);

    const { logs } = await runBotInVm({ distPath, medplum, event: { input: guideCsv('patients.csv'), contentType: 'text/plain' } });
    expect(logs.join('\n')).toContain('2 rows: 2 created');
    expect(logs.join('\n')).not.toMatch(/John|Doe|1980-07-15/);
  });
});
