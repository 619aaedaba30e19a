// Issue 9 through the built bot (dist/import-csv.js run as Medplum's vmcontext runs it): every
// upload is found whatever the browser called it, gets its own Task, is downloaded only from this
// Medplum, and ends completed or failed with the reason; no input reaches another upload's Task.
import type { Attachment, Task } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { binaryAttachment, botRun, documentWith, interceptServer, jobResult, taskReportOf } from '../helpers/bot-events';
import { guideCsv } from '../helpers/guide';
import { cronBot, importTasks, queueUpload } from '../helpers/uploads';
import { BotRunError } from '../helpers/vm-runner';

const PATIENTS = guideCsv('patients.csv');

afterEach(() => {
  vi.restoreAllMocks();
});

function taskFor(medplum: LocalMedplum, docId: string | undefined): Task[] {
  return importTasks(medplum).filter((t) => t.focus?.reference === `DocumentReference/${docId}`);
}

describe('uploads are found whatever the browser called the file', () => {
  const recognised: Omit<Attachment, 'url'>[] = [
    { contentType: 'text/csv', title: 'a.csv' },
    { contentType: 'application/vnd.ms-excel', title: 'from-windows-excel.csv' },
    { contentType: 'text/plain', title: 'plain' },
    { contentType: 'application/csv', title: 'b' },
    { contentType: 'Text/CSV; charset=utf-8', title: 'c' },
    { contentType: 'application/octet-stream', title: 'EXPORT.CSV ' },
    { title: 'no-type.csv' },
  ];
  const ignored: Omit<Attachment, 'url'>[] = [
    { contentType: 'application/pdf', title: 'scan.pdf' },
    { contentType: 'text/csv-schema', title: 'x.txt' },
  ];

  it('a Subscription event imports each recognised upload under its Task; other documents are ignored', async () => {
    const medplum = createLocalMedplum();
    for (const fields of recognised) {
      const doc = await documentWith(medplum, [await binaryAttachment(medplum, PATIENTS, fields)]);
      const { result } = await botRun(medplum, doc);
      expect(jobResult(result), JSON.stringify(fields)).toMatchObject({ outcome: 'completed' });
    }
    for (const fields of ignored) {
      const doc = await documentWith(medplum, [await binaryAttachment(medplum, PATIENTS, fields)]);
      expect((await botRun(medplum, doc)).result).toMatchObject({ outcome: 'ignored' });
    }
    expect(importTasks(medplum).map((t) => t.status)).toEqual(recognised.map(() => 'completed'));
    expect(medplum.allResources('Patient')).toHaveLength(2);
  });

  it('the cron sweep finds exactly the same uploads, and gives each its Task', async () => {
    const medplum = createLocalMedplum();
    const docs = [];
    for (const fields of [...recognised, ...ignored]) {
      docs.push(await documentWith(medplum, [await binaryAttachment(medplum, PATIENTS, fields)]));
    }
    // A withdrawn upload is not an upload.
    await documentWith(medplum, [await binaryAttachment(medplum, PATIENTS, { title: 'old.csv' })], 'superseded');
    await botRun(medplum, cronBot);
    const withTask = docs.filter((d) => taskFor(medplum, d.id).length === 1).length;
    expect(withTask).toBe(recognised.length);
    expect(importTasks(medplum)).toHaveLength(recognised.length);
  });

  it('a document with several CSV attachments: each is its own upload, with its own Task', async () => {
    const medplum = createLocalMedplum();
    const doc = await documentWith(medplum, [
      await binaryAttachment(medplum, PATIENTS, { contentType: 'text/csv', title: 'patients.csv' }),
      await binaryAttachment(medplum, guideCsv('conditions.csv'), { contentType: 'text/csv', title: 'conditions.csv' }),
    ]);
    const { result } = await botRun(medplum, doc);
    expect(result).toMatchObject({ outcome: 'several', jobs: [{ outcome: 'completed' }, { outcome: 'completed' }] });
    expect(taskFor(medplum, doc.id).map((t) => t.input?.find((i) => i.type.text === 'table')?.valueString).sort()).toEqual([
      'conditions',
      'patients',
    ]);
  });
});

describe('downloads only from this Medplum', () => {
  const elsewhere = [
    'https://attacker.example/x.csv',
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'https://example.com.attacker.net/storage/abc/1',
    'https://user:secret@example.com/storage/abc/1',
    'file:///etc/passwd',
  ];

  it('an attachment pointing anywhere else fails its upload with the reason, and nothing is fetched', async () => {
    const medplum = createLocalMedplum();
    const fetched = vi.spyOn(globalThis, 'fetch');
    for (const url of elsewhere) {
      const doc = await documentWith(medplum, [{ contentType: 'text/csv', title: 'x.csv', url }]);
      const job = jobResult((await botRun(medplum, doc)).result);
      expect(job, url).toMatchObject({ outcome: 'failed' });
      expect(job.message).toMatch(/^x\.csv: the attachment does not point at a file stored in this Medplum \(/);
      expect(job.message).not.toContain('secret');
      expect(taskFor(medplum, doc.id)[0]).toMatchObject({ status: 'failed', statusReason: { text: job.message } });
    }
    expect(fetched).not.toHaveBeenCalled();
  });

  it("ids that are not FHIR ids, and other servers' Binary URLs, are refused too", async () => {
    const medplum = createLocalMedplum();
    for (const url of ['Binary/a,b', 'Binary/..%2FPatient', 'https://other.example/fhir/R4/Binary/abc']) {
      const doc = await documentWith(medplum, [{ contentType: 'text/csv', title: 'x.csv', url }]);
      expect(jobResult((await botRun(medplum, doc)).result), url).toMatchObject({ outcome: 'failed' });
    }
  });

  it('hosted storage on its own host is trusted only when named in STORAGE_BASE_URL', async () => {
    const medplum = createLocalMedplum({ storageBaseUrl: 'https://storage.example.org/binary/' });
    const attachment = await binaryAttachment(medplum, PATIENTS, { contentType: 'text/csv', title: 'patients.csv' });
    expect(attachment.url).toMatch(/^https:\/\/storage\.example\.org\/binary\//);
    const first = await documentWith(medplum, [attachment]);
    expect(jobResult((await botRun(medplum, first)).result)).toMatchObject({ outcome: 'failed' });
    const second = await documentWith(medplum, [attachment]);
    const trusted = await botRun(medplum, second, { secrets: { STORAGE_BASE_URL: 'https://storage.example.org/binary/' } });
    expect(jobResult(trusted.result)).toMatchObject({ outcome: 'completed', report: { created: 2 } });
  });

  it('a missing, deleted or forbidden Binary fails its upload saying so, and is not downloaded again by later sweeps', async () => {
    const medplum = createLocalMedplum();
    const deleted = await medplum.createBinary({ data: PATIENTS, contentType: 'text/csv' });
    await medplum.deleteResource('Binary', deleted.id as string);
    const forbidden = await medplum.createBinary({ data: PATIENTS, contentType: 'text/csv' });
    medplum.forbid(`Binary/${forbidden.id}`);
    const cases: [string, RegExp][] = [
      ['Binary/does-not-exist', /^gone\.csv: the file's Binary\/does-not-exist does not exist \(404\)$/],
      [`Binary/${deleted.id}`, /^gone\.csv: the file's Binary\/[\w-]+ was deleted \(410\)$/],
      [`Binary/${forbidden.id}`, /^gone\.csv: the bot may not read the file's Binary\/[\w-]+ \(403\); check its access policy$/],
    ];
    let binaryReads = 0;
    interceptServer(medplum, (url, init, next) => {
      if ((init?.method ?? 'GET') === 'GET' && /\/Binary\//.test(url)) {
        binaryReads++;
      }
      return next();
    });
    for (const [url, reason] of cases) {
      const doc = await documentWith(medplum, [{ contentType: 'text/csv', title: 'gone.csv', url }]);
      const job = jobResult((await botRun(medplum, doc)).result);
      expect(job.message, url).toMatch(reason);
      expect(taskFor(medplum, doc.id)[0].status).toBe('failed');
    }
    const reads = binaryReads;
    await botRun(medplum, cronBot);
    await botRun(medplum, cronBot);
    expect(binaryReads).toBe(reads);
  });
});

describe("no upload reaches another upload's Task", () => {
  it('a crafted attachment URL cannot take over, close or match the Task of another upload', async () => {
    const medplum = createLocalMedplum();
    const honest = await documentWith(medplum, [await binaryAttachment(medplum, PATIENTS, { contentType: 'text/csv', title: 'p.csv' })]);
    const honestBinary = /([A-Za-z0-9\-.]+)\/[^/]+\?/.exec(honest.content[0].attachment.url as string)?.[1] as string;
    expect(honestBinary).toBeTruthy();
    // Queued, not yet imported: a Task another upload might try to reach.
    await queueUpload(medplum, honest);
    const [queued] = taskFor(medplum, honest.id);
    expect(queued.status).toBe('requested');

    for (const url of [`Binary/${honestBinary},x`, `Binary/${honestBinary}|x`, `Binary/x,${honest.id}.${honestBinary}`]) {
      const crafted = await documentWith(medplum, [{ contentType: 'text/csv', title: 'c.csv', url }]);
      expect(jobResult((await botRun(medplum, crafted)).result), url).toMatchObject({ outcome: 'failed' });
    }
    const [after] = taskFor(medplum, honest.id);
    expect(after.meta?.versionId).toBe(queued.meta?.versionId);
    expect(jobResult((await botRun(medplum, honest)).result)).toMatchObject({ outcome: 'completed', report: { created: 2 } });
  });
});

describe('bot inputs are checked strictly', () => {
  it('dryRun must be a JSON boolean: "true" or 1 would otherwise write for real', async () => {
    const medplum = createLocalMedplum();
    for (const dryRun of ['true', 1, 'yes']) {
      await expect(botRun(medplum, { csv: PATIENTS, dryRun }, { contentType: 'application/json' })).rejects.toThrow(
        /"dryRun" must be true or false \(a JSON boolean/
      );
    }
    expect(medplum.allResources('Patient')).toHaveLength(0);
    const { result } = await botRun(medplum, { csv: PATIENTS, dryRun: true }, { contentType: 'application/json' });
    expect(result).toMatchObject({ dryRun: true, skipped: 2 });
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  it('an identifierBase that could widen a match is refused before anything is read', async () => {
    const medplum = createLocalMedplum();
    for (const identifierBase of ['https://ehr.example.org/a|b', 'https://ehr.example.org/a,b', 'https://ehr.example.org/?x', 'not a uri']) {
      const attempt = botRun(medplum, { csv: PATIENTS, identifierBase }, { contentType: 'application/json' });
      await expect(attempt, identifierBase).rejects.toBeInstanceOf(BotRunError);
      await expect(attempt).rejects.toThrow(/identifierBase/);
    }
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });
});

describe('a Task always saves', () => {
  it('a file with 60,000 unknown columns completes, its warning capped', async () => {
    const medplum = createLocalMedplum();
    const extra = Array.from({ length: 60_000 }, (_, i) => `extra_${i}`);
    const csv = [`patient_id,first_name,last_name,birth_date,gender,${extra.join(',')}`, `P001,John,Doe,1980-07-15,M,${extra.map(() => '').join(',')}`].join('\n');
    const doc = await documentWith(medplum, [await binaryAttachment(medplum, csv, { contentType: 'text/csv', title: 'wide.csv' })]);
    expect(jobResult((await botRun(medplum, doc)).result)).toMatchObject({ outcome: 'completed' });
    const [task] = taskFor(medplum, doc.id);
    expect(task.status).toBe('completed');
    const report = taskReportOf(task);
    expect(report?.warnings.join(' ')).toMatch(/and 59980 more/);
    expect(JSON.stringify(task).length).toBeLessThan(100_000);
  });
});
