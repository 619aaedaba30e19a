import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { GUIDE_DIR } from '../helpers/guide';

const root = join(__dirname, '..', '..');
const run = promisify(execFile);

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
    const tableLines = stdout.split('\n').slice(2, 6).map((l) => l.split(/\s+/).slice(0, 4).join(' '));
    expect(tableLines).toEqual([
      'patients.csv patients 2 2',
      'conditions.csv conditions 3 3',
      'encounters.csv encounters 2 2',
      'patient_conditions.csv patient_conditions 3 3',
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
    expect(dry.stdout).toMatch(/people\.csv\s+patients\s+2\s+0\s+0\s+0\s+1\s+1/);
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
