import type { MedplumClient } from '@medplum/core';
import type { DocumentReference } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CONNECTION_VARIABLES, connectToMedplum, loadEnvironment } from '../../src/cli/connect';
import type { ImportReport } from '../../src/lib/report';
import { readBotConfigFile } from '../../src/setup/bot-config';
import { resolveBotId } from '../../src/setup/deploy';
import type { BotTarget } from './scenarios';
import {
  cleanup,
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
} from './scenarios';

/**
 * The deployed import-csv bot on a real Medplum: `npm run test:integration`, after `npm run setup`
 * and `npm run deploy`, with MEDPLUM_BASE_URL / MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET set (a
 * project-admin ClientApplication, so that the run can delete what it wrote). Skipped otherwise,
 * and always skipped under the default `npm test` (see test/integration/vitest.config.ts).
 *
 * Every run imports under its own identifier base, so runs never collide with each other or with
 * real data, and deletes what it wrote at the end.
 */
loadEnvironment();
const missing = CONNECTION_VARIABLES.filter((name) => !process.env[name]);
const enabled = process.env.MEDPLUM_INTEGRATION === '1' && missing.length === 0;
if (process.env.MEDPLUM_INTEGRATION === '1' && missing.length) {
  console.warn(`integration tests skipped: ${missing.join(', ')} not set (environment or .env)`);
}

describe.skipIf(!enabled)('import-csv deployed on a real Medplum', () => {
  const runId = newRunId();
  const identifierBase = runIdentifierBase(runId);
  const log = (line: string): void => console.log(`[integration ${runId}] ${line}`);
  let medplum: MedplumClient;
  let target: BotTarget;
  let upload: DocumentReference & { id: string } | undefined;
  const uploadFile = uploadScenarioCsv(runId);

  beforeAll(async () => {
    ({ medplum } = await connectToMedplum());
    const entry = readBotConfigFile().bots.find((b) => b.name === 'import-csv');
    if (!entry) {
      throw new Error('medplum.config.json has no import-csv bot');
    }
    const botId = await resolveBotId(medplum, entry, log);
    const bot = await medplum.readResource('Bot', botId, { cache: 'no-cache' });
    if (!bot.executableCode?.url && !bot.code) {
      throw new Error(`Bot/${botId} has no deployed code: run npm run setup, then npm run deploy`);
    }
    log(`Bot/${botId} on ${medplum.getBaseUrl()}, identifier base ${identifierBase}`);
    target = { medplum, execute: (input, contentType) => medplum.executeBot(botId, input, contentType) };
  });

  afterAll(async () => {
    if (!medplum) {
      return;
    }
    await cleanup(
      [() => deleteImported(medplum, identifierBase), () => deleteUpload(medplum, upload, [uploadFile.goodId, uploadFile.badId])],
      log
    );
  });

  test("the guide's four tables through $execute give 2 Patients, 3 Conditions, 2 Encounters, 2 ClinicalImpressions; re-running creates nothing", async () => {
    const first = await importGuideTables(target, identifierBase);
    expect(first.map((r) => [r.table, r.rows, r.created, r.failed])).toEqual([
      ['patients', 2, 2, 0],
      ['conditions', 3, 3, 0],
      ['patient_conditions', 3, 3, 0],
      ['encounters', 2, 2, 0],
    ]);
    expect(await countByBase(medplum, identifierBase)).toEqual({ Patient: 2, Condition: 3, Encounter: 2, ClinicalImpression: 2 });

    const second = await importGuideTables(target, identifierBase);
    expect(second.map((r) => [r.table, r.rows, r.created, r.updated, r.failed])).toEqual([
      ['patients', 2, 0, 0, 0],
      ['conditions', 3, 0, 0, 0],
      ['patient_conditions', 3, 0, 0, 0],
      ['encounters', 2, 0, 0, 0],
    ]);
    expect(second.every((r) => r.unchanged === r.rows)).toBe(true);
    expect(await countByBase(medplum, identifierBase)).toEqual({ Patient: 2, Condition: 3, Encounter: 2, ClinicalImpression: 2 });
  });

  test('a text/plain body reaches the bot as the CSV text', async () => {
    // Header only: recognised as the patients table, nothing written under the project's IDENTIFIER_BASE
    // (a text/plain call cannot carry an identifier base of its own).
    const body = await target.execute('patient_id,first_name,last_name,birth_date,gender\n', 'text/plain');
    const report = parseBody<ImportReport>(body);
    expect(report).toMatchObject({ table: 'patients', rows: 0, created: 0, failed: 0 });
    expect(report.warnings).toContain('the file has a header but no data rows');
  });

  test('an uploaded DocumentReference processed by the bot completes its Task, with the report and the rejected rows', async () => {
    upload = await uploadCsvDocument(medplum, `integration-${runId}-patients.csv`, uploadFile.text);
    const outcome = await processUpload(target, upload);

    expect(['completed', 'busy', 'already-done']).toContain(outcome.execute.outcome);
    expect(outcome.task.status).toBe('completed');
    expect(outcome.task.focus?.reference).toBe(`DocumentReference/${upload.id}`);
    expect(outcome.report).toMatchObject({ table: 'patients', rows: 2, created: 1, failed: 1 });
    expect(outcome.report.errors).toEqual([expect.objectContaining({ row: 3, column: 'gender', sourceId: uploadFile.badId })]);
    expect(outcome.rejectedRows?.text).toContain(uploadFile.badId);
    expect(outcome.rejectedRows?.text).not.toContain(uploadFile.goodId);
    expect(await medplum.searchResources('Patient', { identifier: uploadFile.goodId }, { cache: 'no-cache' })).toHaveLength(1);

    // The same upload again: the Task is done, nothing is imported twice.
    const again = parseBody<{ outcome: string }>(await target.execute(upload, 'application/fhir+json'));
    expect(again.outcome).toBe('already-done');
  });
});
