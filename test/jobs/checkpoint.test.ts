import type { Task } from '@medplum/fhirtypes';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { csvFromText, importCsv } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { patientsCsv } from '../helpers/generate';
import { canonicalState } from '../helpers/state';
import { createFakeClock } from '../helpers/clock';
import { BOT_DIST, cronBot, importTasks, runBot, uploadCsv } from '../helpers/uploads';
import { runBotInVm } from '../helpers/vm-runner';

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
      // 15 s a run: about 35,000 rows each (a plan-first batch is a lookup, a write and a check
      // for racing importers), so the file needs six runs and each resumes from a checkpoint.
      await runBot(medplum, cronBot, { TIME_BUDGET_SECONDS: '15' });
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

    const rejectedFiles = (task.output ?? []).filter((o) => o.type.text === 'rejected-rows');
    expect(rejectedFiles).toHaveLength(1);
    const rejectedText = await (await medplum.download(rejectedFiles[0].valueAttachment?.url as string)).text();
    const rejectedRows = Papa.parse<Record<string, string>>(rejectedText, { header: true, skipEmptyLines: true }).data;
    expect(rejectedRows.map((r) => [r.source_row, r.gender, r.import_error])).toEqual(
      ['6', '150001', '199001'].map((row) => [row, 'Z', "gender: gender 'Z' is not a known code: one of M, F, O, U"])
    );

    expect(canonicalState(medplum).filter((r) => r.includes('"Patient"'))).toEqual(canonicalState(oneRun));
  }, 600_000);
});

describe('rejected rows across stops', () => {
  it('rows that failed just before a stop still reach the rejected-rows file, each once', async () => {
    // A slow server (1 s an answer) and small batches: runs stop often, some right after a batch
    // whose progress save the deadline refuses; the rows it failed must not be lost with it. A run
    // spends about 4 s before its first batch (pending uploads, stored mappings, claim, download)
    // and 3 s a batch (lookup, write, check for racing importers): a 12 s budget fits two batches.
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 1000 } });
    const lines = patientsCsv(600, 12).split('\n');
    const bad = [3, 60, 61, 150, 299, 300, 451, 600];
    for (const row of bad) {
      lines[row - 1] = lines[row - 1].replace(/,[MFOU]$/, ',Z');
    }
    await uploadCsv(medplum, 'patients.csv', lines.join('\n'));
    let task: Task | undefined;
    for (let run = 0; run < 60 && task?.status !== 'completed'; run++) {
      await runBotInVm({
        distPath: BOT_DIST,
        medplum,
        clock,
        event: { input: cronBot, contentType: 'application/fhir+json', secrets: secrets({ TIME_BUDGET_SECONDS: '12', BATCH_SIZE: '50' }) },
      });
      task = importTasks(medplum)[0];
      clock.advance(60_000);
    }
    expect(task?.status).toBe('completed');
    const report = JSON.parse(task?.output?.find((o) => o.type.text === 'report')?.valueString ?? '{}') as ImportReport;
    expect(report).toMatchObject({ rows: 600, created: 600 - bad.length, failed: bad.length });
    // One file, or (when a run had no time to merge them) its parts, each a complete CSV.
    const files = (task?.output ?? []).filter((o) => o.type.text === 'rejected-rows').map((o) => o.valueAttachment?.url as string);
    expect(files.length).toBeGreaterThanOrEqual(1);
    const rows: Record<string, string>[] = [];
    for (const url of files) {
      const text = await (await medplum.download(url)).text();
      rows.push(...Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true }).data);
    }
    expect(rows.map((r) => Number(r.source_row))).toEqual(bad);
    expect((task?.output ?? []).filter((o) => o.type.text === 'rejected-rows-part')).toEqual([]);
  }, 120_000);
});

function secrets(values: Record<string, string>): Record<string, { name: string; valueString: string }> {
  return Object.fromEntries(Object.entries(values).map(([name, valueString]) => [name, { name, valueString }]));
}
