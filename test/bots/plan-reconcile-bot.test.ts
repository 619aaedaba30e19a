// Issue 11 through the built bot (dist/import-csv.js in the vm runner): $execute with
// `plan: true` predicts an import and writes no resource, only a Task that records the plan;
// `onConflict` chooses what happens to elements changed in Medplum; `reconcile: true` compares
// Medplum with the file by identifier and records its lists on a Task.
import type { Patient, Task } from '@medplum/fhirtypes';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { DEFAULT_IDENTIFIER_BASE } from '../../src/lib/settings';
import { botRun, documentWith } from '../helpers/bot-events';
import { guideCsv } from '../helpers/guide';
import { BotRunError } from '../helpers/vm-runner';

const PATIENTS = guideCsv('patients.csv');
const JSON_CALL = { contentType: 'application/json' };

function checkTasks(medplum: LocalMedplum, code: string): Task[] {
  return medplum.allResources<Task>('Task').filter((t) => t.code?.coding?.some((c) => c.code === code));
}

function patientWithSourceId(medplum: LocalMedplum, id: string): Patient {
  const found = medplum.allResources<Patient>('Patient').find((p) => p.identifier?.some((i) => i.value === id));
  if (!found) {
    throw new Error(`no Patient ${id}`);
  }
  return found;
}

/** The guide's patients imported, then changed in Medplum as clinicians would, and a newer export of the file. */
async function importedThenEdited(): Promise<{ medplum: LocalMedplum; delta: string }> {
  const medplum = createLocalMedplum();
  await botRun(medplum, { csv: PATIENTS, fileName: 'patients.csv' }, JSON_CALL);
  const [first, second] = PATIENTS.trim().split('\n').slice(1).map((line) => line.split(',')[0]);
  // A phone added (not mapped: an import keeps it) and a birth date corrected (mapped: a conflict).
  const edited = patientWithSourceId(medplum, first);
  await medplum.updateResource<Patient>({ ...edited, telecom: [{ system: 'phone', value: '555-0100' }], birthDate: '1980-07-16' });
  // The newer export: the second patient's family name changed, one new patient.
  const lines = PATIENTS.trim().split('\n');
  const delta = [...lines.map((line) => (line.startsWith(`${second},`) ? line.replace(/,[^,]*,([^,]*,[^,]*)$/, ',Renamed,$1') : line)), 'P900,Ada,Lovelace,1815-12-10,F'].join('\n') + '\n';
  return { medplum, delta };
}

describe('plan mode through the bot', () => {
  it('predicts created, updated, unchanged and conflict rows, writes no resource, records the plan on a Task, and the import then does what it said', async () => {
    const { medplum, delta } = await importedThenEdited();
    const rows = delta.trim().split('\n').length - 1;
    const writesBefore = medplum.stats.writes;
    const patientsBefore = JSON.stringify(medplum.allResources('Patient'));

    const { result } = await botRun(medplum, { csv: delta, fileName: 'patients.csv', plan: true }, JSON_CALL);
    const plan = result as { plan?: boolean; rows: number; created: number; updated: number; unchanged: number; conflict: number; failed: number; task?: string };
    expect(plan).toMatchObject({ plan: true, rows, created: 1, updated: 1, conflict: 1, failed: 0, unchanged: rows - 3 });
    expect(JSON.stringify(medplum.allResources('Patient'))).toBe(patientsBefore);

    // The plan's Task (and its one Binary) are its only writes.
    const [task] = checkTasks(medplum, 'csv-import-plan');
    expect(plan.task).toBe(`Task/${task.id}`);
    expect(medplum.stats.writes - writesBefore).toBe(2);
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.text).toBe(`${rows} rows would be: 1 created, 1 updated, ${rows - 3} unchanged, 1 in conflict, 0 failed, 0 skipped`);
    const url = task.output?.find((o) => o.type.text === 'plan-rows')?.valueAttachment?.url as string;
    const planRows = Papa.parse<Record<string, string>>(await (await medplum.download(url)).text(), { header: true, skipEmptyLines: true }).data;
    expect(planRows).toHaveLength(rows);
    const byAction = (action: string): Record<string, string>[] => planRows.filter((r) => r.action === action);
    expect(byAction('created').map((r) => r.source_id)).toEqual(['P900']);
    expect(byAction('updated').map((r) => r.paths)).toEqual(['name[0].family']);
    expect(byAction('conflict').map((r) => r.paths)).toEqual(['birthDate']);
    // Element paths only: no value of the file or of Medplum is in the plan.
    expect(JSON.stringify(planRows)).not.toMatch(/Renamed|Lovelace|1980-07-16|555-0100/);
    expect(JSON.stringify(task)).not.toMatch(/Renamed|Lovelace|1980-07-16|555-0100/);

    // The import then does exactly what the plan predicted, and keeps what clinicians changed.
    const { result: imported } = await botRun(medplum, { csv: delta, fileName: 'patients.csv' }, JSON_CALL);
    expect(imported).toMatchObject({ rows, created: 1, updated: 1, conflict: 1, failed: 0, unchanged: rows - 3 });
    const edited = patientWithSourceId(medplum, 'P001');
    expect(edited).toMatchObject({ birthDate: '1980-07-16', telecom: [{ system: 'phone', value: '555-0100' }] });

    // onConflict: overwrite from the $execute input replaces the conflicting element, keeps the phone.
    const { result: overwritten } = await botRun(medplum, { csv: delta, fileName: 'patients.csv', onConflict: 'overwrite' }, JSON_CALL);
    expect(overwritten).toMatchObject({ rows, updated: 1, conflict: 0, unchanged: rows - 1 });
    expect(patientWithSourceId(medplum, 'P001')).toMatchObject({ birthDate: '1980-07-15', telecom: [{ system: 'phone', value: '555-0100' }] });
  });

  it('plans an upload without touching its import Task', async () => {
    const medplum = createLocalMedplum();
    const attachment = await medplum.createAttachment({ data: PATIENTS, contentType: 'text/csv', filename: 'patients.csv' });
    const doc = await documentWith(medplum, [{ ...attachment, title: 'patients.csv' }]);
    const { result } = await botRun(medplum, { document: { reference: `DocumentReference/${doc.id}` }, plan: true }, JSON_CALL);
    expect(result).toMatchObject({ plan: true, created: PATIENTS.trim().split('\n').length - 1 });
    expect(medplum.allResources('Patient')).toHaveLength(0);
    expect(checkTasks(medplum, 'csv-import')).toHaveLength(0);
    expect(checkTasks(medplum, 'csv-import-plan').map((t) => t.focus?.reference)).toEqual([`DocumentReference/${doc.id}`]);
  });
});

describe('reconciliation through the bot', () => {
  it('is empty right after an import; then lists a missing and an extra resource, by identifier, on a Task', async () => {
    const medplum = createLocalMedplum();
    await botRun(medplum, { csv: PATIENTS, fileName: 'patients.csv' }, JSON_CALL);
    const rows = PATIENTS.trim().split('\n').length - 1;

    const { result: clean } = await botRun(medplum, { csv: PATIENTS, fileName: 'patients.csv', reconcile: true }, JSON_CALL);
    expect(clean).toMatchObject({ rows, matched: rows, missing: 0, extra: 0, duplicates: 0, unresolved: 0 });

    const gone = patientWithSourceId(medplum, 'P002');
    await medplum.deleteResource('Patient', gone.id as string);
    const system = gone.identifier?.find((i) => i.value === 'P002')?.system as string;
    expect(system.startsWith(DEFAULT_IDENTIFIER_BASE)).toBe(true);
    await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system, value: 'P777' }] });
    const writes = medplum.stats.writes;

    const { result } = await botRun(medplum, { csv: PATIENTS, fileName: 'patients.csv', reconcile: true }, JSON_CALL);
    const reconciliation = result as { missing: number; extra: number; missingResources: { sourceId?: string }[]; extraResources: { value?: string }[]; task?: string };
    expect(reconciliation).toMatchObject({ rows, matched: rows - 1, missing: 1, extra: 1, duplicates: 0 });
    expect(reconciliation.missingResources.map((m) => m.sourceId)).toEqual(['P002']);
    expect(JSON.stringify(reconciliation.extraResources)).toContain('P777');
    // Nothing deleted or changed: only the reconciliation's Task was written.
    expect(medplum.stats.writes - writes).toBe(1);
    const tasks = checkTasks(medplum, 'csv-import-reconcile');
    expect(tasks).toHaveLength(2);
    const last = tasks.find((t) => `Task/${t.id}` === reconciliation.task) as Task;
    expect(last.businessStatus?.text).toBe(`${rows} rows compared: ${rows - 1} matched, 1 missing in Medplum, 1 extra, 0 duplicated, 0 unresolved references`);
    expect(JSON.parse(last.output?.[0].valueString ?? '{}')).toMatchObject({ missing: 1, extra: 1 });
  });
});

describe('plan, reconcile and onConflict inputs are checked strictly', () => {
  it('refuses non-boolean flags, two modes at once and unknown onConflict values, writing nothing', async () => {
    const medplum = createLocalMedplum();
    const attempts: [Record<string, unknown>, RegExp][] = [
      [{ plan: 'true' }, /"plan" must be true or false/],
      [{ reconcile: 1 }, /"reconcile" must be true or false/],
      [{ plan: true, dryRun: true }, /"dryRun" and "plan" do not go together/],
      [{ plan: true, reconcile: true }, /"plan" and "reconcile" do not go together/],
      [{ onConflict: 'replace' }, /onConflict must be "keep" or "overwrite"/],
    ];
    for (const [input, message] of attempts) {
      const attempt = botRun(medplum, { csv: PATIENTS, ...input }, JSON_CALL);
      await expect(attempt, JSON.stringify(input)).rejects.toBeInstanceOf(BotRunError);
      await expect(attempt).rejects.toThrow(message);
    }
    // An upload's import reads its settings from the project's secrets, run after run.
    const attachment = await medplum.createAttachment({ data: PATIENTS, contentType: 'text/csv', filename: 'patients.csv' });
    const doc = await documentWith(medplum, [{ ...attachment, title: 'patients.csv' }]);
    await expect(botRun(medplum, { document: { reference: `DocumentReference/${doc.id}` }, onConflict: 'overwrite' }, JSON_CALL)).rejects.toThrow(
      /"onConflict": an upload is imported under its Task with the project's secrets/
    );
    expect(medplum.allResources('Patient')).toHaveLength(0);
    expect(medplum.allResources('Task')).toHaveLength(0);
  });
});
