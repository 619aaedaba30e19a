import type { MedplumClient, WithId } from '@medplum/core';
import { normalizeErrorString, sleep } from '@medplum/core';
import type { Attachment, DocumentReference, Resource, ResourceType, Task } from '@medplum/fhirtypes';
import { randomBytes } from 'node:crypto';
import type { UploadEventResult } from '../../src/lib/jobs/scheduler';
import { linkTo } from '../../src/lib/execute/server-link';
import { tokenParam } from '../../src/lib/fhir/search-values';
import { trustedLocations } from '../../src/lib/input/download';
import type { Upload } from '../../src/lib/jobs/task-ledger';
import { isFinished, JOB, outputAttachments, taskReport, uploadsOf } from '../../src/lib/jobs/task-ledger';

/** The (first) CSV upload of a DocumentReference, as the bot sees it. */
function uploadOf(medplum: MedplumClient, doc: DocumentReference): Upload | undefined {
  return uploadsOf(doc, trustedLocations(linkTo(medplum)))[0];
}

function rejectedRowsAttachment(task: Task): Attachment | undefined {
  return outputAttachments(task, JOB.outputs.rejectedRows)[0];
}
import type { ImportReport } from '../../src/lib/report';
import { GUIDE_FILES, guideCsv } from '../helpers/guide';

/**
 * The main scenarios of the deployed import-csv bot, written once against a "bot target" so that the
 * same code runs against a real Medplum (test/integration, $execute over HTTP) and, as a rehearsal,
 * against the local Medplum with the built bot in a vm (test/setup/integration-scenarios.test.ts).
 */
export interface BotTarget {
  medplum: MedplumClient;
  /** Runs the bot as `$execute` with this Content-Type does; resolves with the response body, parsed. */
  execute(input: unknown, contentType: string): Promise<unknown>;
}

/** A run id for unique identifier systems and file names, so runs never collide. */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function runIdentifierBase(runId: string): string {
  return `https://integration-test.example.org/run-${runId}/fhir`;
}

/** `$execute` answers text/plain calls with a text/plain body holding the JSON report. */
export function parseBody<T>(body: unknown): T {
  return (typeof body === 'string' ? JSON.parse(body) : body) as T;
}

/** The guide's four tables, parents first, as JSON `$execute` calls under the given identifier base. */
export async function importGuideTables(target: BotTarget, identifierBase: string): Promise<ImportReport[]> {
  const reports: ImportReport[] = [];
  for (const file of GUIDE_FILES) {
    const body = await target.execute({ csv: guideCsv(file), fileName: file, identifierBase }, 'application/json');
    reports.push(parseBody<ImportReport>(body));
  }
  return reports;
}

/** The resource types the guide tables write, with the identifier system of each under a base. */
export const GUIDE_SYSTEMS: [ResourceType, string][] = [
  ['Patient', 'patient-id'],
  ['Condition', 'patient-condition-id'],
  ['Encounter', 'encounter-id'],
  ['ClinicalImpression', 'encounter-note-id'],
];

/** How many resources of each type carry an identifier in the base's systems (all pages). */
export async function countByBase(medplum: MedplumClient, identifierBase: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [type, kind] of GUIDE_SYSTEMS) {
    counts[type] = (await findBySystem(medplum, type, `${identifierBase}/${kind}`)).length;
  }
  return counts;
}

async function findBySystem(medplum: MedplumClient, type: ResourceType, system: string): Promise<WithId<Resource>[]> {
  const found: WithId<Resource>[] = [];
  for await (const page of medplum.searchResourcePages(type, { identifier: `${system}|`, _count: '1000' }, { cache: 'no-cache' })) {
    found.push(...(page as WithId<Resource>[]));
  }
  return found;
}

/** Deletes what an import under this base wrote: the four types and the condition catalog. Returns the references deleted. */
export async function deleteImported(medplum: MedplumClient, identifierBase: string): Promise<string[]> {
  const deleted: string[] = [];
  for (const [type, kind] of [...GUIDE_SYSTEMS].reverse()) {
    for (const resource of await findBySystem(medplum, type, `${identifierBase}/${kind}`)) {
      await medplum.deleteResource(type, resource.id);
      deleted.push(`${type}/${resource.id}`);
    }
  }
  for (const [type, url] of [
    ['CodeSystem', `${identifierBase}/CodeSystem/condition-catalog`],
    ['ConceptMap', `${identifierBase}/ConceptMap/condition-catalog-to-icd10`],
  ] as const) {
    for (const resource of await medplum.searchResources(type, { url }, { cache: 'no-cache' })) {
      await medplum.deleteResource(type, resource.id);
      deleted.push(`${type}/${resource.id}`);
    }
  }
  return deleted;
}

/** Uploads a CSV as the Medplum app does: the bytes as a Binary, then a DocumentReference pointing at it. */
export async function uploadCsvDocument(medplum: MedplumClient, fileName: string, text: string): Promise<WithId<DocumentReference>> {
  const attachment = await medplum.createAttachment({ data: text, contentType: 'text/csv', filename: fileName });
  return medplum.createResource<DocumentReference>({
    resourceType: 'DocumentReference',
    status: 'current',
    description: fileName,
    content: [{ attachment: { ...attachment, contentType: 'text/csv', title: fileName } }],
  });
}

/** A patients file with one good row and one the bot must reject (unknown gender code). */
export function uploadScenarioCsv(runId: string): { text: string; goodId: string; badId: string } {
  const goodId = `IT-${runId}-1`;
  const badId = `IT-${runId}-2`;
  const text =
    'patient_id,first_name,last_name,birth_date,gender\r\n' +
    `${goodId},Integration,Accepted,1980-01-01,F\r\n` +
    `${badId},Integration,Rejected,1980-01-01,X\r\n`;
  return { text, goodId, badId };
}

export interface UploadOutcome {
  execute: UploadEventResult;
  task: WithId<Task>;
  report: ImportReport;
  rejectedRows?: { attachment: Attachment; text: string };
}

/**
 * Runs the bot on an uploaded DocumentReference (as its Subscription does) and waits for the upload's
 * Task to finish. A Subscription set up by `npm run setup` may process the same upload concurrently;
 * the Task claim makes that safe, so the direct call may answer `busy` or `already-done` instead.
 */
export async function processUpload(
  target: BotTarget,
  doc: WithId<DocumentReference>,
  timeoutMs = 120_000
): Promise<UploadOutcome> {
  const execute = parseBody<UploadEventResult>(await target.execute(doc, 'application/fhir+json'));
  const task = await waitForTask(target.medplum, doc, timeoutMs);
  const report = taskReport(task) as ImportReport;
  const attachment = rejectedRowsAttachment(task);
  const rejectedRows = attachment?.url
    ? { attachment, text: await (await target.medplum.download(attachment.url, { cache: 'no-cache' })).text() }
    : undefined;
  return { execute, task, report, rejectedRows };
}

/** The upload's Task once it is completed or failed. */
export async function waitForTask(medplum: MedplumClient, doc: DocumentReference, timeoutMs: number): Promise<WithId<Task>> {
  const upload = uploadOf(medplum, doc);
  if (!upload) {
    throw new Error(`DocumentReference/${doc.id} has no CSV attachment with a URL`);
  }
  const deadline = Date.now() + timeoutMs;
  let last: WithId<Task> | undefined;
  for (;;) {
    last = await medplum.searchOne('Task', { identifier: tokenParam(JOB.uploadIdentifierSystem, upload.key) }, { cache: 'no-cache' });
    if (last && isFinished(last)) {
      return last;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `The Task of DocumentReference/${doc.id} did not finish within ${timeoutMs / 1000} s ` +
          `(status: ${last?.status ?? 'no Task'}, ${last?.businessStatus?.text ?? ''})`
      );
    }
    await sleep(1000);
  }
}

/** Deletes the upload, its Task, the Binaries, and the Patients it created (found by their unique source ids). */
export async function deleteUpload(
  medplum: MedplumClient,
  doc: WithId<DocumentReference> | undefined,
  sourceIds: string[]
): Promise<string[]> {
  const deleted: string[] = [];
  const remove = async (type: ResourceType, id: string | undefined): Promise<void> => {
    if (id) {
      await medplum.deleteResource(type, id);
      deleted.push(`${type}/${id}`);
    }
  };
  for (const sourceId of sourceIds) {
    for (const patient of await medplum.searchResources('Patient', { identifier: sourceId }, { cache: 'no-cache' })) {
      await remove('Patient', patient.id);
    }
  }
  if (doc) {
    const upload = uploadOf(medplum, doc);
    const tasks = upload
      ? await medplum.searchResources('Task', { identifier: tokenParam(JOB.uploadIdentifierSystem, upload.key) }, { cache: 'no-cache' })
      : [];
    for (const task of tasks) {
      for (const output of task.output ?? []) {
        await remove('Binary', binaryId(output.valueAttachment?.url));
      }
      await remove('Task', task.id);
    }
    await remove('DocumentReference', doc.id);
    await remove('Binary', upload?.binaryId);
  }
  return deleted;
}

function binaryId(url: string | undefined): string | undefined {
  return url ? /(?:^|\/)binary\/([^/?#]+)/i.exec(url)?.[1] : undefined;
}

/** Runs every cleanup step, keeps going past failures, and reports them (cleanup must not hide a test result). */
export async function cleanup(steps: (() => Promise<string[]>)[], log: (line: string) => void): Promise<void> {
  for (const step of steps) {
    try {
      const deleted = await step();
      if (deleted.length) {
        log(`cleanup: deleted ${deleted.length} resource(s)`);
      }
    } catch (err) {
      log(`cleanup failed: ${normalizeErrorString(err)}`);
    }
  }
}
