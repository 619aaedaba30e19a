import type { DocumentReference, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';
import { canonicalState } from '../helpers/state';
import { cronBot, importTasks, queueUpload, runBot, uploadCsv } from '../helpers/uploads';

const reportOf = (task: Task): ImportReport =>
  JSON.parse(task.output?.find((o) => o.type.text === 'report')?.valueString ?? 'null') as ImportReport;

describe('uploads, the Task ledger and the cron schedule', () => {
  it('four uploads in the wrong order: two cron runs import every row, with four completed Tasks', async () => {
    const medplum = createLocalMedplum();
    for (const file of [...GUIDE_FILES].reverse()) {
      await uploadCsv(medplum, file, guideCsv(file));
    }
    await runBot(medplum, cronBot);
    await runBot(medplum, cronBot);

    const tasks = importTasks(medplum);
    expect(tasks).toHaveLength(4);
    expect(tasks.map((t) => t.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const reports = tasks.map(reportOf).sort((a, b) => a.table.localeCompare(b.table));
    expect(reports.map((r) => [r.table, r.rows, r.created, r.failed])).toEqual([
      ['conditions', 3, 3, 0],
      ['encounters', 2, 2, 0],
      ['patient_conditions', 3, 3, 0],
      ['patients', 2, 2, 0],
    ]);
    for (const task of tasks) {
      expect(task.focus?.reference).toMatch(/^DocumentReference\//);
      expect(task.businessStatus?.text).toMatch(/rows: \d+ created/);
    }
    expect(['Patient', 'Condition', 'Encounter', 'ClinicalImpression'].map((t) => medplum.allResources(t as 'Patient').length)).toEqual([2, 3, 2, 2]);

    // A third run finds nothing to do and changes nothing.
    const state = canonicalState(medplum);
    const { result } = await runBot(medplum, cronBot);
    expect(result).toMatchObject({ jobs: [], pending: 0 });
    expect(canonicalState(medplum)).toEqual(state);
  });

  it('a child upload waits for its parent tables instead of failing its rows', async () => {
    const medplum = createLocalMedplum();
    await uploadCsv(medplum, 'patients.csv', guideCsv('patients.csv'));
    const conditions = await uploadCsv(medplum, 'patient_conditions.csv', guideCsv('patient_conditions.csv'));
    // The subscription for patient_conditions fires: no catalog yet, so it waits.
    const { result } = await runBot(medplum, conditions);
    expect(result).toMatchObject({ outcome: 'waiting' });
    expect(medplum.allResources('Condition')).toHaveLength(0);
    const waiting = importTasks(medplum).find((t) => t.focus?.reference === `DocumentReference/${conditions.id}`);
    expect(waiting).toMatchObject({ status: 'requested', businessStatus: { text: expect.stringMatching(/^waiting/) } });

    await uploadCsv(medplum, 'conditions.csv', guideCsv('conditions.csv'));
    await runBot(medplum, cronBot);
    expect(medplum.allResources('Condition')).toHaveLength(3);
    expect(importTasks(medplum).map((t) => t.status)).toEqual(['completed', 'completed', 'completed']);
  });

  it('the SDK create-then-update pattern: the create (no URL yet) is ignored, the update imports', async () => {
    const medplum = createLocalMedplum();
    const draft = await medplum.createResource<DocumentReference>({
      resourceType: 'DocumentReference',
      status: 'current',
      content: [{ attachment: { contentType: 'text/csv', title: 'patients.csv' } }],
    });
    expect((await runBot(medplum, draft)).result).toMatchObject({ outcome: 'ignored' });
    expect(importTasks(medplum)).toHaveLength(0);

    const attachment = await medplum.createAttachment({ data: guideCsv('patients.csv'), contentType: 'text/csv', filename: 'patients.csv' });
    const updated = await medplum.updateResource({ ...draft, content: [{ attachment: { ...attachment, title: 'patients.csv' } }] });
    expect((await runBot(medplum, updated)).result).toMatchObject({ outcome: 'completed', report: { created: 2 } });
    // The same event again (a retry, or a later unrelated update): nothing is imported twice.
    expect((await runBot(medplum, updated)).result).toMatchObject({ outcome: 'already-done' });
    expect(medplum.allResources('Patient')).toHaveLength(2);
    expect(importTasks(medplum)).toHaveLength(1);
  });

  it('two concurrent invocations for one upload give one import and no duplicates', async () => {
    const medplum = createLocalMedplum({ latencyMs: 2 });
    const doc = await uploadCsv(medplum, 'patients.csv', guideCsv('patients.csv'));
    const results = await Promise.all([runBot(medplum, doc), runBot(medplum, doc), runBot(medplum, doc)]);
    const outcomes = results.map((r) => (r.result as { outcome: string }).outcome).sort();
    expect(outcomes.filter((o) => o === 'completed')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'completed').every((o) => o === 'busy' || o === 'already-done')).toBe(true);
    expect(importTasks(medplum)).toHaveLength(1);
    expect(medplum.allResources('Patient')).toHaveLength(2);
    const history = await medplum.readHistory('Task', importTasks(medplum)[0].id as string);
    // Claimed once: a single requested -> in-progress transition.
    expect(history.entry?.filter((e) => (e.resource as Task).status === 'in-progress').length).toBeGreaterThanOrEqual(1);
    expect(reportOf(importTasks(medplum)[0])).toMatchObject({ rows: 2, created: 2 });
  });

  it('rejected rows become a CSV in the Task (formulas neutralised); fixed and re-uploaded, the import completes', async () => {
    const medplum = createLocalMedplum();
    const csv = [
      'patient_id,first_name,last_name,birth_date,gender',
      'P001,John,Doe,1980-07-15,M',
      'P002,=HYPERLINK("x"),Smith,1985-02-30,F',
      'P003,Ann,Lee,1990-01-01,Q',
    ].join('\n');
    const doc = await uploadCsv(medplum, 'patients.csv', csv);
    await runBot(medplum, doc);
    const [task] = importTasks(medplum);
    expect(task.status).toBe('completed');
    expect(reportOf(task)).toMatchObject({ rows: 3, created: 1, failed: 2 });
    const rejected = task.output?.find((o) => o.type.text === 'rejected-rows')?.valueAttachment;
    expect(rejected).toMatchObject({ contentType: 'text/csv' });
    const text = await (await medplum.download(rejected?.url as string)).text();
    const lines = text.trim().split('\r\n');
    expect(lines[0]).toBe('"patient_id","first_name","last_name","birth_date","gender","source_row","import_error"');
    expect(lines[1]).toBe('"P002","\'=HYPERLINK(""x"")","Smith","1985-02-30","F","3","birth_date: birth_date is not a real calendar date"');
    expect(lines[2]).toMatch(/^"P003","Ann","Lee","1990-01-01","Q","4","gender: gender 'Q' is not a known code/);
    // The rejected-rows file is a Binary, not a DocumentReference: it does not trigger an import.
    expect(medplum.allResources('DocumentReference')).toHaveLength(1);

    const fixedCsv = text.replace("'=HYPERLINK(\"\"x\"\")", 'Jane').replace('1985-02-30', '1985-02-28').replace('"Q"', '"F"');
    const fixedDoc = await uploadCsv(medplum, 'patients-fixed.csv', fixedCsv);
    const { result } = await runBot(medplum, fixedDoc);
    expect(result).toMatchObject({ outcome: 'completed', report: { rows: 2, created: 2, failed: 0 } });
    expect((result as { report: ImportReport }).report.warnings).toEqual([
      'column(s) not used by table patients, ignored: source_row, import_error',
    ]);
    expect(medplum.allResources('Patient')).toHaveLength(3);
  });

  it('an unreadable upload fails its Task with the reason and writes nothing', async () => {
    const medplum = createLocalMedplum();
    const doc = await uploadCsv(medplum, 'mystery.csv', 'foo,bar\n1,2\n');
    const { result } = await runBot(medplum, doc);
    expect(result).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/mystery\.csv: the header matches no known table/) });
    expect(importTasks(medplum)[0]).toMatchObject({ status: 'failed', statusReason: { text: expect.stringMatching(/no known table/) } });
  });
});

describe('claims and leases', () => {
  it('a job held by a live invocation is left alone; one whose invocation died is taken over after its lease', async () => {
    const medplum = createLocalMedplum();
    const doc = await uploadCsv(medplum, 'patients.csv', guideCsv('patients.csv'));
    await queueUpload(medplum, doc);
    const [queued] = importTasks(medplum);
    expect(queued).toMatchObject({ status: 'requested', focus: { reference: `DocumentReference/${doc.id}` } });

    // Another invocation claimed it and is still within its lease.
    const lease = (ms: number): Task['extension'] => [
      { url: 'urn:medplum-csv-import:lease-until', valueDateTime: new Date(Date.now() + ms).toISOString() },
    ];
    const held = await medplum.updateResource({ ...queued, status: 'in-progress', extension: lease(60_000) });
    expect((await runBot(medplum, doc)).result).toMatchObject({ outcome: 'busy' });
    expect((await runBot(medplum, cronBot)).result).toMatchObject({ jobs: [], pending: 1 });
    expect(medplum.allResources('Patient')).toHaveLength(0);

    // That invocation died: once its lease has passed, the next run takes the job over.
    await medplum.updateResource({ ...held, extension: lease(-1000) });
    const { result: after } = await runBot(medplum, cronBot);
    expect(after).toMatchObject({ jobs: [{ outcome: 'completed' }], pending: 0 });
    expect(medplum.allResources('Patient')).toHaveLength(2);
  });
});
