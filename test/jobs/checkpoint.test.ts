import type { Task } from '@medplum/fhirtypes';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { csvFromText, importCsv } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { patientsCsv } from '../helpers/generate';
import { canonicalState } from '../helpers/state';
import { cronBot, importTasks, runBot, uploadCsv } from '../helpers/uploads';

const ROWS = 200_000;

describe('checkpointed imports', () => {
  it(`a ${ROWS.toLocaleString('en')}-row patients file finishes over several cron runs with the end state of one long run`, async () => {
    // A few bad rows, so the rejected-rows file is appended to across invocations.
    const lines = patientsCsv(ROWS, 11).split('\n');
    for (const row of [5, 150_000, 199_000]) {
      lines[row] = lines[row].replace(/,[MFOU]$/, ',Z');
    }
    const csv = lines.join('\n');

    const oneRun = createLocalMedplum();
    const { report: longRun } = await importCsv(oneRun, csvFromText('patients.csv', csv));
    expect(longRun).toMatchObject({ rows: ROWS, created: ROWS - 3, failed: 3 });

    const medplum = createLocalMedplum();
    await uploadCsv(medplum, 'patients.csv', csv);
    const progress: string[] = [];
    let runs = 0;
    let task: Task | undefined;
    do {
      runs++;
      await runBot(medplum, cronBot, { TIME_BUDGET_SECONDS: '5' });
      task = importTasks(medplum)[0];
      progress.push(task.businessStatus?.text ?? '');
    } while (task.status !== 'completed' && runs < 150);

    expect(task.status).toBe('completed');
    expect(runs).toBeGreaterThan(2);
    expect(progress[0]).toMatch(/^paused after row \d+ \(\d+ of 200000 rows done\); resumes on the next run$/);
    const report = JSON.parse(task.output?.find((o) => o.type.text === 'report')?.valueString ?? '{}') as ImportReport;
    expect(report).toMatchObject({ rows: ROWS, created: ROWS - 3, failed: 3, updated: 0, unchanged: 0, skipped: 0 });
    expect(report.errors.map((e) => e.row)).toEqual([6, 150_001, 199_001]);
    expect(report.resumeAfterRow).toBeUndefined();

    const rejected = task.output?.find((o) => o.type.text === 'rejected-rows')?.valueAttachment;
    const rejectedText = await (await medplum.download(rejected?.url as string)).text();
    const rejectedRows = Papa.parse<Record<string, string>>(rejectedText, { header: true, skipEmptyLines: true }).data;
    expect(rejectedRows.map((r) => [r.source_row, r.gender, r.import_error])).toEqual(
      ['6', '150001', '199001'].map((row) => [row, 'Z', 'gender: gender is not a known code: one of M, F, O, U'])
    );

    expect(canonicalState(medplum).filter((r) => r.includes('"Patient"'))).toEqual(canonicalState(oneRun));
  }, 600_000);
});
