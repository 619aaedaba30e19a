import type { WithId } from '@medplum/core';
import type { DocumentReference } from '@medplum/fhirtypes';
import esbuild from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { botBuildOptions } from '../../esbuild-script.mjs';
import type { ImportReport } from '../../src/lib/report';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { runBotInVm } from '../helpers/vm-runner';
import type { BotTarget } from '../integration/scenarios';
import {
  countByBase,
  deleteImported,
  deleteUpload,
  importGuideTables,
  newRunId,
  parseBody,
  processUpload,
  runIdentifierBase,
  uploadCsvDocument,
  uploadScenarioCsv,
} from '../integration/scenarios';

/**
 * A rehearsal of the integration scenarios (test/integration) on the local Medplum, with the bot
 * built from source and run in a vm as the vmcontext runtime runs it: it checks the scenario code
 * itself (counting, waiting for Tasks, cleanup) without a server. `$execute` is modelled as the
 * server does it: text/plain input arrives as the string, JSON as the parsed object, and the
 * response body goes back as JSON.
 */
let outDir: string;
let distPath: string;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'scenarios-bot-'));
  distPath = join(outDir, 'import-csv.js');
  await esbuild.build(botBuildOptions(join(__dirname, '..', '..', 'src', 'bots', 'import-csv.ts'), distPath));
});

afterAll(() => {
  rmSync(outDir, { recursive: true, force: true });
});

function localTarget(medplum: LocalMedplum): BotTarget {
  return {
    medplum,
    async execute(input, contentType) {
      const { result } = await runBotInVm({ distPath, medplum, event: { input, contentType, secrets: {} } });
      const body = JSON.stringify(result);
      return contentType === 'text/plain' ? body : JSON.parse(body);
    },
  };
}

describe('integration scenarios, rehearsed on the local Medplum', () => {
  test("the guide's four tables, twice, under a run's own identifier base; cleanup removes them", async () => {
    const medplum = createLocalMedplum();
    const target = localTarget(medplum);
    const identifierBase = runIdentifierBase(newRunId());

    const first = await importGuideTables(target, identifierBase);
    expect(first.map((r) => [r.table, r.rows, r.created, r.failed])).toEqual([
      ['patients', 2, 2, 0],
      ['conditions', 3, 3, 0],
      ['patient_conditions', 3, 3, 0],
      ['encounters', 2, 2, 0],
    ]);
    expect(await countByBase(medplum, identifierBase)).toEqual({ Patient: 2, Condition: 3, Encounter: 2, ClinicalImpression: 2 });
    const second = await importGuideTables(target, identifierBase);
    expect(second.every((r) => r.created === 0 && r.updated === 0 && r.failed === 0 && r.unchanged === r.rows)).toBe(true);

    // Another run's base sees none of it.
    expect(await countByBase(medplum, runIdentifierBase(newRunId()))).toEqual({ Patient: 0, Condition: 0, Encounter: 0, ClinicalImpression: 0 });

    const deleted = await deleteImported(medplum, identifierBase);
    expect(deleted).toHaveLength(2 + 3 + 2 + 2 + 2);
    for (const type of ['Patient', 'Condition', 'Encounter', 'ClinicalImpression', 'CodeSystem', 'ConceptMap'] as const) {
      expect(medplum.allResources(type)).toEqual([]);
    }
  });

  test('a text/plain body is imported as the CSV text', async () => {
    const medplum = createLocalMedplum();
    const report = parseBody<ImportReport>(
      await localTarget(medplum).execute('patient_id,first_name,last_name,birth_date,gender\n', 'text/plain')
    );
    expect(report).toMatchObject({ table: 'patients', rows: 0, created: 0, failed: 0 });
    expect(report.warnings).toContain('the file has a header but no data rows');
    expect(medplum.stats.writes).toBe(0);
  });

  test('an upload processed by the bot completes its Task with the report and rejected rows; cleanup removes everything', async () => {
    const medplum = createLocalMedplum();
    const target = localTarget(medplum);
    const runId = newRunId();
    const file = uploadScenarioCsv(runId);
    const upload: WithId<DocumentReference> = await uploadCsvDocument(medplum, `integration-${runId}-patients.csv`, file.text);

    const outcome = await processUpload(target, upload, 5_000);

    expect(outcome.execute.outcome).toBe('completed');
    expect(outcome.task.status).toBe('completed');
    expect(outcome.task.focus?.reference).toBe(`DocumentReference/${upload.id}`);
    expect(outcome.report).toMatchObject({ table: 'patients', rows: 2, created: 1, failed: 1 });
    expect(outcome.report.errors).toEqual([expect.objectContaining({ row: 3, column: 'gender', sourceId: file.badId })]);
    expect(outcome.rejectedRows?.text).toContain(file.badId);
    expect(outcome.rejectedRows?.text).not.toContain(file.goodId);
    expect(parseBody<{ outcome: string }>(await target.execute(upload, 'application/fhir+json')).outcome).toBe('already-done');

    const deleted = await deleteUpload(medplum, upload, [file.goodId, file.badId]);
    expect(deleted.map((r) => r.split('/')[0]).sort()).toEqual(['Binary', 'Binary', 'DocumentReference', 'Patient', 'Task']);
    for (const type of ['Patient', 'Task', 'DocumentReference', 'Binary'] as const) {
      expect(medplum.allResources(type)).toEqual([]);
    }
  });
});
