import type { Bot, DocumentReference, Task } from '@medplum/fhirtypes';
import { fileURLToPath } from 'node:url';
import { linkTo } from '../../src/lib/execute/server-link';
import { trustedLocations } from '../../src/lib/input/download';
import { findOrCreateTask, uploadsOf } from '../../src/lib/jobs/task-ledger';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { runBotInVm } from './vm-runner';

// From import.meta.url rather than __dirname: the benchmark loads this module as ESM (tsx).
export const BOT_DIST = fileURLToPath(new URL('../../dist/import-csv.js', import.meta.url));

/** Uploads a CSV the way the Medplum app does: a Binary, then a DocumentReference pointing at it. */
export async function uploadCsv(
  medplum: LocalMedplum,
  fileName: string,
  text: string | Uint8Array
): Promise<DocumentReference> {
  const attachment = await medplum.createAttachment({ data: text, contentType: 'text/csv', filename: fileName });
  return medplum.createResource<DocumentReference>({
    resourceType: 'DocumentReference',
    status: 'current',
    description: fileName,
    content: [{ attachment: { ...attachment, title: fileName } }],
  });
}

export const cronBot: Bot = { resourceType: 'Bot', id: 'import-csv', name: 'import-csv', timeout: 10 };

/** Runs the built bot in the vm, as Medplum does for a Subscription or a cron schedule. */
export async function runBot(
  medplum: LocalMedplum,
  input: unknown,
  secrets: Record<string, string> = {}
): Promise<{ result: unknown; logs: string[] }> {
  return runBotInVm({
    distPath: BOT_DIST,
    medplum,
    event: {
      input,
      contentType: 'application/fhir+json',
      secrets: Object.fromEntries(Object.entries(secrets).map(([name, valueString]) => [name, { name, valueString }])),
    },
  });
}

/** The import Tasks (one per upload), not the sweep's own bookkeeping Task. */
export function importTasks(medplum: LocalMedplum): Task[] {
  return medplum.allResources<Task>('Task').filter((t) => t.code?.coding?.some((c) => c.code === 'csv-import'));
}

/**
 * Gives an upload its Task without running it (as a sweep does that runs out of time first),
 * dated by `clock` when the test simulates time.
 */
export async function queueUpload(medplum: LocalMedplum, doc: DocumentReference, clock?: { now(): number }): Promise<Task> {
  const [upload] = uploadsOf(doc, trustedLocations(linkTo(medplum)));
  const task = await findOrCreateTask(medplum, upload);
  if (!clock) {
    return task;
  }
  const now = new Date(clock.now()).toISOString();
  return medplum.updateResource({ ...task, authoredOn: now, lastModified: now });
}
