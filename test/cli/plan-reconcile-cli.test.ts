// Issue 11, items 3-5 on the command line: --plan (with --plan-rows and --report), --on-conflict
// (and ON_CONFLICT), --reconcile. Run in this process against a local Medplum the test prepares.
import type { Patient } from '@medplum/fhirtypes';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Papa from 'papaparse';
import { afterEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/import';
import { main } from '../../src/cli/import';
import type { ImportReport } from '../../src/lib';
import { csvFromText, importCsv } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import type { ReconcileReport } from '../../src/lib/reconcile';
import { GUIDE_DIR, GUIDE_FILES, guideCsv } from '../helpers/guide';

const PATIENT_ID = 'https://legacy-ehr.example.org/fhir/patient-id';

/** `npm run import -- args` in this process, into the given local Medplum. */
async function cli(args: string[], medplum: LocalMedplum): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    progress: { write: (text: string) => ((stderr += text), true), isTTY: false },
    target: async () => ({ medplum, description: "the test's local Medplum", local: true }),
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** The table line of a file: its cells after the file name. */
function tableLine(stdout: string, file: string): string[] {
  const line = stdout.split('\n').find((l) => l.startsWith(`${file} `));
  return (line ?? '').trim().split(/\s+/).slice(1);
}

function patient(medplum: LocalMedplum, id: string): Patient {
  return medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === id) as Patient;
}

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'plan-cli-'));

/**
 * Guide patients imported; then a clinician corrects P001's birth date in Medplum. The file: P001
 * as before (its birth date now in conflict), P002 renamed (updated), P003 new (created), P004 bad.
 */
async function preparedPatients(): Promise<{ medplum: LocalMedplum; file: string; dir: string }> {
  const medplum = createLocalMedplum();
  await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
  await medplum.updateResource<Patient>({ ...patient(medplum, 'P001'), birthDate: '1980-07-16' });
  const dir = tempDir();
  const file = join(dir, 'patients.csv');
  writeFileSync(
    file,
    'patient_id,first_name,last_name,birth_date,gender\n' +
      'P001,John,Doe,1980-07-15,M\n' +
      'P002,Janet,Smith,1985-03-22,F\n' +
      'P003,Ada,Lovelace,1815-12-10,F\n' +
      'P004,Alan,Turing,1912-06-23,X\n'
  );
  return { medplum, file, dir };
}

describe('npm run import -- --plan', () => {
  it('shows per file what an import would do, writes nothing, and the import then does exactly that', async () => {
    const { medplum, file, dir } = await preparedPatients();
    const writes = medplum.stats.writes;
    const rowsCsv = join(dir, 'rows.csv');
    const plan = await cli(['--local', '--plan', '--plan-rows', rowsCsv, '--report', join(dir, 'plan.json'), file], medplum);
    expect(plan.code).toBe(1); // a row would fail
    expect(plan.stderr).toContain("Planning against the test's local Medplum: nothing is written");
    expect(plan.stdout.split('\n')[0].split(/\s+/)).toEqual(['file', 'table', 'rows', 'created', 'updated', 'unchanged', 'conflict', 'failed', 'skipped']);
    // rows, created, updated, unchanged, conflict, failed, skipped
    expect(tableLine(plan.stdout, file)).toEqual(['patients', '4', '1', '1', '0', '1', '1', '0']);
    expect(plan.stdout).toContain('row 2, id P001: conflict: birthDate changed in Medplum since the last import (would be kept; --on-conflict overwrite replaces them)');
    expect(plan.stdout).toContain('row 5, column gender, id P004: gender ');
    expect(plan.stdout).toContain('Plan only: nothing was written.');
    expect(plan.stdout).toContain(`Planned rows (4) written to ${rowsCsv}.`);
    expect(medplum.stats.writes).toBe(writes);
    expect(patient(medplum, 'P001').birthDate).toBe('1980-07-16');

    // --plan-rows: per row the action and element paths, never a cell value.
    const text = readFileSync(rowsCsv, 'utf8');
    const [header, ...data] = Papa.parse<string[]>(text.trim()).data;
    expect(header).toEqual(['file', 'row', 'source_id', 'action', 'paths', 'detail']);
    // In the order rows were planned: sorted here by row.
    const rows = [header, ...data.sort((a, b) => Number(a[1]) - Number(b[1]))];
    expect(rows.slice(1).map((r) => r.slice(0, 4))).toEqual([
      [file, '2', 'P001', 'conflict'],
      [file, '3', 'P002', 'updated'],
      [file, '4', 'P003', 'created'],
      [file, '5', 'P004', 'failed'],
    ]);
    expect(rows[1][4]).toBe('birthDate');
    expect(rows[2][4]).toMatch(/^name/);
    expect(rows[3][4].split('; ')).toEqual(expect.arrayContaining(['birthDate', 'gender', 'identifier']));
    expect(rows[4][5]).toBe('columns: gender');
    for (const cell of ['John', 'Janet', 'Lovelace', '1815-12-10', '1985-03-22', "'X'"]) {
      expect(text).not.toContain(cell);
    }
    const [report] = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as ImportReport[];
    expect(report).toMatchObject({ plan: true, rows: 4, created: 1, updated: 1, unchanged: 0, conflict: 1, failed: 1 });
    expect(report.conflicts).toEqual([{ row: 2, sourceId: 'P001', paths: ['birthDate'] }]);

    // The import does what the plan said.
    const imported = await cli(['--local', file], medplum);
    expect(tableLine(imported.stdout, file)).toEqual(tableLine(plan.stdout, file));
    expect(imported.stdout).toContain('row 2, id P001: conflict: birthDate changed in Medplum since the last import (kept;');
    expect(patient(medplum, 'P001').birthDate).toBe('1980-07-16');
  });

  it('--plan-rows as JSON; --on-conflict overwrite plans and then replaces what was changed in Medplum', async () => {
    const { medplum, file, dir } = await preparedPatients();
    const rowsJson = join(dir, 'rows.json');
    const plan = await cli(['--local', '--plan', '--on-conflict', 'overwrite', '--plan-rows', rowsJson, file], medplum);
    expect(plan.stderr).toContain('(on conflict: overwrite)');
    expect(tableLine(plan.stdout, file)).toEqual(['patients', '4', '1', '2', '0', '0', '1', '0']);
    const rows = (JSON.parse(readFileSync(rowsJson, 'utf8')) as { row: number; sourceId: string; action: string; paths: string[] }[]).sort((a, b) => a.row - b.row);
    expect(rows[0]).toEqual({ file, row: 2, sourceId: 'P001', action: 'updated', paths: ['birthDate'] });
    expect(rows.map((r) => r.action)).toEqual(['updated', 'updated', 'created', 'failed']);

    const imported = await cli(['--local', '--on-conflict', 'overwrite', file], medplum);
    expect(tableLine(imported.stdout, file)).toEqual(['patients', '4', '1', '2', '0', '0', '1', '0']);
    expect(patient(medplum, 'P001').birthDate).toBe('1980-07-15');
    // Nothing left to do.
    const again = await cli(['--local', '--plan', file], medplum);
    expect(tableLine(again.stdout, file)).toEqual(['patients', '4', '0', '0', '3', '0', '1', '0']);
  });

  describe('ON_CONFLICT', () => {
    const saved = process.env.ON_CONFLICT;
    afterEach(() => {
      if (saved === undefined) {
        delete process.env.ON_CONFLICT;
      } else {
        process.env.ON_CONFLICT = saved;
      }
    });

    it('sets the default, which --on-conflict overrides; a bad value is refused', async () => {
      const { medplum, file } = await preparedPatients();
      process.env.ON_CONFLICT = 'overwrite';
      expect(tableLine((await cli(['--local', '--plan', file], medplum)).stdout, file)).toEqual(['patients', '4', '1', '2', '0', '0', '1', '0']);
      expect(tableLine((await cli(['--local', '--plan', '--on-conflict', 'keep', file], medplum)).stdout, file)).toEqual(['patients', '4', '1', '1', '0', '1', '1', '0']);
      process.env.ON_CONFLICT = 'sometimes';
      const bad = await cli(['--local', '--plan', file], medplum);
      expect(bad).toMatchObject({ code: 2, stdout: '', stderr: 'import: ON_CONFLICT must be "keep" or "overwrite"\n' });
    });
  });

  it('says so when rows fail for parents that files planned with them would create', async () => {
    const medplum = createLocalMedplum();
    const files = ['patients.csv', 'encounters.csv'].map((f) => join(GUIDE_DIR, f));
    const { code, stdout } = await cli(['--local', '--plan', ...files], medplum);
    expect(code).toBe(1);
    expect(tableLine(stdout, files[1])).toEqual(['encounters', '2', '0', '0', '0', '0', '2', '0']);
    expect(stdout).toContain('2 of these rows name resources not in Medplum yet: a plan writes nothing');
    expect(medplum.stats.writes).toBe(0);
  });

  it('refuses options that do not go together', async () => {
    const medplum = createLocalMedplum();
    const file = join(GUIDE_DIR, 'patients.csv');
    const cases: [string[], string][] = [
      [['--plan', '--dry-run'], 'import: --dry-run and --plan cannot be combined: choose one\n'],
      [['--plan', '--reconcile'], 'import: --plan and --reconcile cannot be combined: choose one\n'],
      [['--plan-rows', 'rows.csv'], 'import: --plan-rows needs --plan\n'],
      [['--plan', '--plan-rows', 'rows.txt'], 'import: --plan-rows: rows.txt must end in .csv or .json\n'],
      [['--plan', '--plan-rows', '/no/such/folder/rows.csv'], 'import: --plan-rows: the folder of /no/such/folder/rows.csv does not exist\n'],
      [['--reconcile', '--rejected', 'out'], 'import: --reconcile cannot be combined with --rejected\n'],
    ];
    for (const [args, message] of cases) {
      expect(await cli(['--local', ...args, file], medplum)).toEqual({ code: 2, stdout: '', stderr: message });
    }
    await expect(cli(['--local', '--on-conflict', 'sometimes', file], medplum)).rejects.toMatchObject({ code: 'commander.invalidArgument' });
  });
});

describe('npm run import -- --reconcile', () => {
  const guideFiles = GUIDE_FILES.map((f) => join(GUIDE_DIR, f));

  async function importedGuide(): Promise<LocalMedplum> {
    const medplum = createLocalMedplum();
    for (const file of GUIDE_FILES) {
      await importCsv(medplum, csvFromText(file, guideCsv(file)));
    }
    return medplum;
  }

  it('exits 0 with every row matched right after a clean import', async () => {
    const medplum = await importedGuide();
    const { code, stdout, stderr } = await cli(['--local', '--reconcile', ...guideFiles], medplum);
    expect(code).toBe(0);
    expect(stderr).toContain("Reconciling with the test's local Medplum: nothing is written");
    expect(stdout.split('\n')[0].split(/\s+/)).toEqual(['file', 'table', 'rows', 'mapped', 'rejected', 'skipped', 'matched', 'missing', 'extra', 'duplicates', 'unresolved']);
    // rows, mapped, rejected, skipped, matched, missing, extra, duplicates, unresolved
    expect(tableLine(stdout, join(GUIDE_DIR, 'patients.csv'))).toEqual(['patients', '2', '2', '0', '0', '2', '0', '0', '0', '0']);
    expect(tableLine(stdout, join(GUIDE_DIR, 'encounters.csv'))).toEqual(['encounters', '2', '2', '0', '0', '2', '0', '0', '0', '0']);
    expect(tableLine(stdout, join(GUIDE_DIR, 'patient_conditions.csv'))).toEqual(['patient_conditions', '3', '3', '0', '0', '3', '0', '0', '0', '0']);
    expect(stdout).toContain('Reconciliation only: nothing was written.');
  });

  it('lists missing, extra, duplicate resources and unresolved references per file, writes them with --report, writes nothing to Medplum', async () => {
    const medplum = await importedGuide();
    await medplum.deleteResource('Patient', patient(medplum, 'P002').id as string);
    const stray = await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: PATIENT_ID, value: 'P999' }] });
    const copy = await medplum.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: PATIENT_ID, value: 'P001' }] });
    const writes = medplum.stats.writes;
    const dir = tempDir();
    const { code, stdout } = await cli(['--local', '--reconcile', '--report', join(dir, 'reconcile.json'), ...guideFiles], medplum);
    expect(code).toBe(1);
    expect(medplum.stats.writes).toBe(writes);
    const patients = join(GUIDE_DIR, 'patients.csv');
    expect(tableLine(stdout, patients)).toEqual(['patients', '2', '2', '0', '0', '0', '1', '1', '1', '0']);
    expect(tableLine(stdout, join(GUIDE_DIR, 'patient_conditions.csv'))).toEqual(['patient_conditions', '3', '3', '0', '0', '0', '0', '0', '0', '3']);
    expect(stdout).toContain(`  missing: row 3, id P002: Patient ${PATIENT_ID}|P002 is not in Medplum`);
    expect(stdout).toContain(`  extra: Patient/${stray.id} (${PATIENT_ID}|P999): no row of the file names it (listed, not deleted)`);
    expect(stdout).toContain(`  duplicate: Patient ${PATIENT_ID}|P001 is held by 2 resources: `);
    expect(stdout).toContain(`Patient/${copy.id}`);
    expect(stdout).toContain(`  unresolved: row 4, id PC003: Condition.subject -> Patient ${PATIENT_ID}|P002: no such resource in Medplum`);
    expect(stdout).toContain('  unresolved: row 2, id PC001: Condition.subject -> Patient');
    expect(stdout).toContain(`Reconciliations of 4 files written to ${join(dir, 'reconcile.json')}.`);

    const reports = JSON.parse(readFileSync(join(dir, 'reconcile.json'), 'utf8')) as ReconcileReport[];
    expect(reports.map((r) => [r.table, r.missing, r.extra, r.duplicates, r.unresolved])).toEqual([
      ['patients', 1, 1, 1, 0],
      ['conditions', 0, 0, 0, 0],
      ['patient_conditions', 0, 0, 0, 3],
      // The encounter and the note of each: P001 is held twice, P002 is gone.
      ['encounters', 0, 0, 0, 4],
    ]);
    expect(reports[0].missingResources).toEqual([{ row: 3, sourceId: 'P002', type: 'Patient', label: 'patient', system: PATIENT_ID, value: 'P002' }]);
    // Never a cell value.
    const text = readFileSync(join(dir, 'reconcile.json'), 'utf8') + stdout;
    for (const cell of ['John', 'Smith', '1980-07-15', 'Routine annual checkup', 'Essential hypertension']) {
      expect(text).not.toContain(cell);
    }
  });
});
