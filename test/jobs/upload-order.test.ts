// Issue 9, "every upload is accounted for": files dropped together reach the bot in any order
// (each upload's Subscription fires on its own), and an upload may be deleted while others wait
// for it. Through the built bot, on a simulated clock.
import type { Bot, DocumentReference, Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { binaryAttachment, botRun, documentWith, jobResult, taskReportOf } from '../helpers/bot-events';
import { runSchedule } from '../helpers/bot-schedule';
import type { FakeClock } from '../helpers/clock';
import { createFakeClock } from '../helpers/clock';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';
import { importTasks, queueUpload } from '../helpers/uploads';

const SECRETS = { TIME_BUDGET_SECONDS: '6' };

async function upload(medplum: LocalMedplum, file: string): Promise<DocumentReference> {
  return documentWith(medplum, [await binaryAttachment(medplum, guideCsv(file), { contentType: 'text/csv', title: file })]);
}

async function cronUntilDone(medplum: LocalMedplum, clock: FakeClock): Promise<void> {
  const bot = (await medplum.createResource<Bot>({ resourceType: 'Bot', name: 'import-csv', timeout: 10 })) as Bot & { id: string };
  await runSchedule(
    { medplum, clock, bot, cronMinutes: 1, secrets: SECRETS, maxInvocations: 60 },
    undefined,
    () => importTasks(medplum).every((t) => ['completed', 'failed', 'cancelled'].includes(t.status))
  );
}

function guideCounts(medplum: LocalMedplum): number[] {
  return ['Patient', 'Condition', 'Encounter', 'ClinicalImpression'].map((t) => medplum.allResources(t as 'Patient').length);
}

describe('files dropped together end as if uploaded in dependency order', () => {
  const orders = [
    ['encounters.csv', 'patient_conditions.csv', 'conditions.csv', 'patients.csv'],
    ['patient_conditions.csv', 'encounters.csv', 'patients.csv', 'conditions.csv'],
  ];
  for (const order of orders) {
    it(`events in the order ${order.join(', ')}, each before the next file exists`, async () => {
      const clock = createFakeClock();
      const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 10 } });
      for (const file of order) {
        // The Subscription of this upload fires before the next file is even uploaded.
        const result = jobResult((await botRun(medplum, await upload(medplum, file), { clock, secrets: SECRETS })).result);
        expect(['completed', 'waiting']).toContain(result.outcome);
        clock.advance(5_000);
      }
      await cronUntilDone(medplum, clock);

      const tasks = importTasks(medplum);
      expect(tasks.map((t) => t.status)).toEqual(GUIDE_FILES.map(() => 'completed'));
      expect(tasks.map((t) => taskReportOf(t)?.failed)).toEqual([0, 0, 0, 0]);
      expect(tasks.map((t) => taskReportOf(t)?.rows).sort()).toEqual([2, 2, 3, 3]);
      expect(guideCounts(medplum)).toEqual([2, 3, 2, 2]);
    });
  }

  it('rows whose parents never come fail after the wait (PARENT_WAIT_MINUTES), naming the missing id', async () => {
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 10 } });
    const doc = await upload(medplum, 'encounters.csv');
    const first = jobResult((await botRun(medplum, doc, { clock, secrets: SECRETS })).result);
    expect(first.outcome).toBe('waiting');
    expect(first.message).toMatch(/^waiting: 2 rows reference Patient not in Medplum yet; they are retried when uploads of patients finish, and at the latest after /);
    expect(importTasks(medplum)[0]).toMatchObject({ status: 'requested' });

    clock.advance(5 * 60_000);
    await botRun(medplum, (await medplum.createResource<Bot>({ resourceType: 'Bot', name: 'b', timeout: 10 })), { clock, secrets: SECRETS });
    expect(importTasks(medplum)[0].status).toBe('requested'); // still within the 15 minutes

    clock.advance(11 * 60_000);
    await cronUntilDone(medplum, clock);
    const [task] = importTasks(medplum);
    expect(task.status).toBe('completed');
    expect(taskReportOf(task)).toMatchObject({ rows: 2, failed: 2 });
    expect(taskReportOf(task)?.errors.map((e) => [e.row, e.column, e.message.replace(/ \(no Patient.*$/, '')])).toEqual([
      // Found out by the plan, before anything was sent.
      [2, 'patient_id', 'patient_id P001 is not in Medplum'],
      [3, 'patient_id', 'patient_id P002 is not in Medplum'],
    ]);
  });
});

describe('orphans never block other tables', () => {
  it('a parent upload deleted before its import: its Task is cancelled, and the child is imported without waiting for it', async () => {
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 10 } });
    const patients = await upload(medplum, 'patients.csv');
    const encounters = await upload(medplum, 'encounters.csv');
    // Both have their Tasks, neither was imported yet.
    await queueUpload(medplum, patients, clock);
    await queueUpload(medplum, encounters, clock);
    expect(importTasks(medplum).map((t) => t.status)).toEqual(['requested', 'requested']);

    await medplum.deleteResource('DocumentReference', patients.id as string);
    clock.advance(60_000);
    await cronUntilDone(medplum, clock);

    const tasks = importTasks(medplum);
    const orphan = tasks.find((t) => t.focus?.reference === `DocumentReference/${patients.id}`);
    expect(orphan).toMatchObject({ status: 'cancelled', statusReason: { text: expect.stringMatching(/deleted, replaced/) } });
    const child = tasks.find((t) => t.id !== orphan?.id);
    expect(child?.status).toBe('completed');
    expect(taskReportOf(child as never)).toMatchObject({ rows: 2, failed: 2 });
  });

  it('an upload replaced by another file: the old Task is cancelled, the new file imported', async () => {
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 10 } });
    const doc = await upload(medplum, 'patients.csv');
    await queueUpload(medplum, doc, clock);
    const replacement = await binaryAttachment(medplum, guideCsv('patients.csv').replace('P002', 'P003'), {
      contentType: 'text/csv',
      title: 'patients-v2.csv',
    });
    const replaced = await medplum.updateResource({ ...doc, content: [{ attachment: replacement }] });
    clock.advance(60_000);
    expect(jobResult((await botRun(medplum, replaced, { clock, secrets: SECRETS })).result)).toMatchObject({ outcome: 'completed' });
    await cronUntilDone(medplum, clock);
    expect(importTasks(medplum).map((t) => t.status).sort()).toEqual(['cancelled', 'completed']);
    expect(medplum.allResources<Patient>('Patient').map((p) => p.identifier?.[0]?.value).sort()).toEqual(['P001', 'P003']);
  });
});
