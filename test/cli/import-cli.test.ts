import type { Observation, Patient } from '@medplum/fhirtypes';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/import';
import { main } from '../../src/cli/import';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { GUIDE_DIR } from '../helpers/guide';
import { HAS_SYNTHEA, SYNTHEA_DIR } from '../helpers/synthea';

const root = join(__dirname, '..', '..');
const run = promisify(execFile);
/** A table the project has never seen: lab results, coded from a dictionary CSV beside the mapping. */
const LAB = 'test/cli/fixtures/lab';
const LAB_CSV = `${LAB}/lab-results.csv`;
const GUIDE_PATIENTS = 'examples/guide/patients.csv';
/** A real Synthea export, read where it is kept (never copied into the repository). */
const SYNTHEA = SYNTHEA_DIR;

/** Runs `npm run import -- args` as a user would (tsx on the project's Node 22), without a TTY. */
async function importCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, MEDPLUM_BASE_URL: '', PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH}` };
  try {
    const { stdout, stderr } = await run('tsx', ['src/cli/import.ts', ...args], { cwd: root, env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run import', () => {
  it('imports files in dependency order into the local Medplum, with progress lines and a report table', async () => {
    const files = ['encounters.csv', 'patient_conditions.csv', 'patients.csv', 'conditions.csv'].map((f) => join(GUIDE_DIR, f));
    const { code, stdout, stderr } = await importCli(files);
    expect(code).toBe(0);
    expect(stderr).toContain('Importing into local in-memory Medplum');
    expect(stderr).toMatch(/patients\.csv: 2\/2 rows \(100%\), \d+ rows\/s, ETA 0 s/);
    // Files are named by their path as given.
    const tableLines = stdout.split('\n').slice(2, 6).map((l) => l.split(/\s+/).slice(0, 4).join(' '));
    expect(tableLines).toEqual([
      `${join(GUIDE_DIR, 'patients.csv')} patients 2 2`,
      `${join(GUIDE_DIR, 'conditions.csv')} conditions 3 3`,
      `${join(GUIDE_DIR, 'encounters.csv')} encounters 2 2`,
      `${join(GUIDE_DIR, 'patient_conditions.csv')} patient_conditions 3 3`,
    ]);
  }, 120_000);

  it('exits 1 and lists the row errors when rows fail; --dry-run reports what it would write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
    const file = join(dir, 'people.csv');
    writeFileSync(file, 'patient_id,first_name,last_name,birth_date,gender\nP1,A,B,1990-01-01,M\nP2,C,D,1990-13-01,F\n');
    const failed = await importCli([file]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('row 3, column birth_date, id P2: birth_date is not a real calendar date');

    const dry = await importCli(['--dry-run', file]);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain('dry run: would write 1 Patient');
    expect(dry.stdout).toMatch(/people\.csv\s+patients\s+2\s+0\s+0\s+0\s+0\s+1\s+1/);
  }, 120_000);

  it('exits 1 naming a file that cannot be imported at all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
    const file = join(dir, 'odd.csv');
    writeFileSync(file, 'foo,bar\n1,2\n');
    const { code, stdout } = await importCli([file]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/odd\.csv: not imported: the header matches no known table/);
  }, 120_000);
});

/** The command run in this process (to look into the local Medplum it imported into afterwards). */
async function importInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string; medplum: ReturnType<typeof createLocalMedplum> }> {
  const medplum = createLocalMedplum();
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    progress: {
      write: (text: string) => {
        stderr += text;
        return true;
      },
      isTTY: false,
    },
    target: async (options) => {
      expect(options.local).toBe(true);
      return { medplum, description: 'the test\'s local Medplum', local: true };
    },
  };
  const code = await main(args, io);
  return { code, stdout, stderr, medplum };
}

/** The `--- file row n: Type` blocks of --show output: file, row, type and the resource. */
function shownBlocks(stdout: string): { file: string; row: number; type: string; resource: { resourceType: string } }[] {
  const blocks = [...stdout.matchAll(/^--- (.+) row (\d+): (\w+)\n([\s\S]*?\n\})\n/gm)];
  return blocks.map((m) => ({ file: m[1], row: Number(m[2]), type: m[3], resource: JSON.parse(m[4]) as { resourceType: string } }));
}

describe('npm run import with mappings', () => {
  it('imports a table the project has never seen with --mapping (on top of --profile guide), parents first', async () => {
    // The lab file comes first on the command line; its rows reference the guide's patients.
    const { code, stdout, stderr, medplum } = await importInProcess(['--local', '--profile', 'guide', '--mapping', LAB, LAB_CSV, GUIDE_PATIENTS]);
    expect(code).toBe(1); // R4's test code is not in the dictionary
    expect(stderr).toContain(`Mappings: profile guide + ${LAB}`);
    // rows, created, updated, unchanged, conflict, failed
    const lines = stdout.split('\n').slice(2, 4).map((l) => l.split(/\s+/).slice(0, 8).join(' '));
    expect(lines).toEqual([`${GUIDE_PATIENTS} patients 2 2 0 0 0 0`, `${LAB_CSV} lab_results 4 3 0 0 0 1`]);
    expect(stdout).toContain("row 5, column test, id R4: test 'XYZ' is not a known code: one of GLU, HGB, K");

    const patients = await medplum.searchResources('Patient', { identifier: 'https://legacy-ehr.example.org/fhir/patient-id|P001' });
    expect(patients).toHaveLength(1);
    const observations = await medplum.searchResources('Observation', { _count: '10' });
    expect(observations).toHaveLength(3);
    const glucose = observations.find((o) => o.identifier?.[0]?.value === 'R1') as Observation;
    expect(glucose).toMatchObject({
      status: 'final',
      identifier: [{ system: 'https://legacy-ehr.example.org/fhir/lab-result-id', value: 'R1' }],
      code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }] },
      subject: { reference: `Patient/${(patients[0] as Patient).id}` },
      effectiveDateTime: '2023-05-01T09:30:00-05:00',
      valueQuantity: { value: 105, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
      interpretation: [{ coding: [{ code: 'H', display: 'High' }] }],
    });
    const potassium = observations.find((o) => o.identifier?.[0]?.value === 'R3') as Observation;
    expect(potassium.code?.coding?.[0]?.code).toBe('2823-3');
    expect(potassium.subject?.reference).not.toBe(glucose.subject?.reference); // P002, not P001
  }, 60_000);

  it('--table names a mapping table; an unknown one lists the tables of the set', async () => {
    const forced = await importInProcess(['--local', '--dry-run', '--profile', 'guide', '--mapping', LAB, '--table', 'lab_results', LAB_CSV]);
    expect(forced.stdout).toMatch(/lab-results\.csv\s+lab_results\s+4\s+0\s+0\s+0\s+0\s+1\s+3/);
    const unknown = await importInProcess(['--local', '--profile', 'guide', '--mapping', LAB, '--table', 'labs', LAB_CSV]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      `import: --table: unknown table 'labs' (tables of profile guide + ${LAB}: conditions, patients, encounters, lab_results, patient_conditions)\n`
    );
  }, 60_000);

  it.skipIf(!HAS_SYNTHEA)('--profile synthea-csv imports files of a real Synthea export with no failed row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
    const files = ['providers.csv', 'patients.csv', 'organizations.csv'].map((f) => join(SYNTHEA, f));
    const { code, stdout } = await importCli(['--profile', 'synthea-csv', '--report', join(dir, 'report.json'), ...files]);
    expect(code).toBe(0);
    const reports = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ImportReport[];
    // Parents first: providers reference organizations.
    expect(reports.map((r) => [r.table, r.rows, r.created, r.failed])).toEqual([
      ['patients', 27, 27, 0],
      ['organizations', 63, 63, 0],
      ['providers', 166, 166, 0],
    ]);
    expect(stdout).toMatch(/providers\.csv\s+providers\s+166\s+166\s+0\s+0\s+0\s+0/);

    const unknown = await importCli(['--profile', 'epic', files[0]]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("unknown profile 'epic' (known profiles: guide, synthea-csv)");
  }, 120_000);

  it('lists every mapping problem with its file and JSON pointer, and imports nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
    const mappings = join(dir, 'mappings');
    mkdirSync(mappings);
    const mapping = JSON.parse(readFileSync(join(root, LAB, 'lab-results.mapping.json'), 'utf8')) as {
      codes: { tests: { file: string } };
      resources: { elements: Record<string, unknown> }[];
    };
    mapping.codes.tests.file = 'missing-tests.csv';
    mapping.resources[0].elements['valueQuantiti'] = { column: 'value' };
    writeFileSync(join(mappings, 'lab-results.mapping.json'), JSON.stringify(mapping, null, 2));
    writeFileSync(join(mappings, 'broken.mapping.json'), '{ "name": "broken", ');
    const data = join(dir, 'lab-results.csv');
    writeFileSync(data, readFileSync(join(root, LAB_CSV)));

    const { code, stdout, stderr } = await importCli(['--profile', 'guide', '--mapping', mappings, data, join(root, GUIDE_PATIENTS)]);
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^import: the mappings have \d+ problems; nothing was imported:$/);
    const problems = lines.slice(1);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${join(mappings, 'broken.mapping.json')}: not valid JSON`)),
        `${join(mappings, 'lab-results.mapping.json')} /codes/tests/file: dictionary file 'missing-tests.csv' is not in the mapping set (put it beside the mapping)`,
        expect.stringMatching(new RegExp(`^${join(mappings, 'lab-results.mapping.json')} /resources/0/elements/valueQuantiti: `)),
      ])
    );
    // Each problem names its file (a path) and, where it has one, the place in it.
    expect(problems.every((p) => p.startsWith(join(mappings, 'broken.mapping.json')) || p.startsWith(join(mappings, 'lab-results.mapping.json')))).toBe(true);
    // Nothing was read, connected to, or imported.
    expect(stdout).toBe('');
    expect(stderr).not.toContain('Importing into');
  }, 120_000);

  it('--dry-run --show 2 prints the first two mapped resources of each file, headed by file and row', async () => {
    const { code, stdout } = await importCli(['--dry-run', '--show', '2', '--mapping', LAB, '--profile', 'guide', LAB_CSV, GUIDE_PATIENTS]);
    expect(code).toBe(1);
    const blocks = shownBlocks(stdout);
    expect(blocks.map((b) => [b.file, b.row, b.type])).toEqual([
      [GUIDE_PATIENTS, 2, 'Patient'],
      [GUIDE_PATIENTS, 3, 'Patient'],
      [LAB_CSV, 2, 'Observation'],
      [LAB_CSV, 3, 'Observation'],
    ]);
    expect(blocks[0].resource).toMatchObject({ resourceType: 'Patient', name: [{ family: 'Doe', given: ['John'] }], gender: 'male' });
    expect(blocks[3].resource).toMatchObject({
      resourceType: 'Observation',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
      valueQuantity: { value: 13.9, unit: 'g/dL' },
      subject: { reference: 'Patient?identifier=https%3A%2F%2Flegacy-ehr.example.org%2Ffhir%2Fpatient-id|P001' },
    });
    // Then the usual table: nothing was written.
    expect(stdout).toMatch(/lab-results\.csv\s+lab_results\s+4\s+0\s+0\s+0\s+0\s+1\s+3/);
    expect(stdout).toContain('dry run: would write 3 Observation');
  }, 120_000);

  it('two files of one name in different folders stay apart: table, --report and --rejected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
    for (const [folder, gender] of [['clinic-a', 'X'], ['clinic-b', '=1+1']] as const) {
      mkdirSync(join(dir, folder));
      writeFileSync(
        join(dir, folder, 'patients.csv'),
        `patient_id,first_name,last_name,birth_date,gender\n${folder}-1,Ada,Lovelace,1815-12-10,F\n${folder}-2,Alan,Turing,1912-06-23,${gender}\n`
      );
    }
    const a = join(dir, 'clinic-a', 'patients.csv');
    const b = join(dir, 'clinic-b', 'patients.csv');
    const rejected = join(dir, 'rejected');
    const { code, stdout } = await importCli(['--report', join(dir, 'report.json'), '--rejected', rejected, a, b]);
    expect(code).toBe(1);
    expect(stdout).toMatch(new RegExp(`${a}\\s+patients\\s+2\\s+1\\s+0\\s+0\\s+0\\s+1\\s+0`));
    expect(stdout).toMatch(new RegExp(`${b}\\s+patients\\s+2\\s+1\\s+0\\s+0\\s+0\\s+1\\s+0`));

    // --report: every file's full report, in import order, named by its path.
    const reports = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ImportReport[];
    expect(reports).toEqual([
      {
        file: a,
        table: 'patients',
        rows: 2,
        created: 1,
        updated: 0,
        unchanged: 0,
        conflict: 0,
        failed: 1,
        skipped: 0,
        errors: [{ row: 3, column: 'gender', sourceId: 'clinic-a-2', message: expect.stringContaining('gender') }],
        skips: [],
        conflicts: [],
        warnings: [],
      },
      expect.objectContaining({ file: b, table: 'patients', created: 1, failed: 1, errors: [expect.objectContaining({ row: 3, sourceId: 'clinic-b-2' })] }),
    ]);
    expect(stdout).toContain(`Reports of 2 files written to ${join(dir, 'report.json')}.`);

    // --rejected: one CSV per file with failed rows, named as the bot names them, made unique.
    expect(readdirSync(rejected).sort()).toEqual(['rejected-rows-patients-2.csv', 'rejected-rows-patients.csv']);
    const csvA = readFileSync(join(rejected, 'rejected-rows-patients.csv'), 'utf8');
    expect(csvA).toBe(
      '"patient_id","first_name","last_name","birth_date","gender","source_row","import_error"\r\n' +
        `"clinic-a-2","Alan","Turing","1912-06-23","X","3","gender: ${reports[0].errors[0].message}"\r\n`
    );
    // A formula-like cell comes back neutralised, as the bot writes it.
    expect(readFileSync(join(rejected, 'rejected-rows-patients-2.csv'), 'utf8')).toContain('"clinic-b-2","Alan","Turing","1912-06-23","\'=1+1","3"');
    expect(stdout).toContain(`rejected rows (1): ${join(rejected, 'rejected-rows-patients.csv')}`);
    expect(stdout).toContain(`rejected rows (1): ${join(rejected, 'rejected-rows-patients-2.csv')}`);
    expect(stdout).toContain(`Rejected rows of 2 files written to ${rejected}`);
  }, 120_000);
});
