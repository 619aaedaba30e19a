import type { Bundle, DocumentReference, Task } from '@medplum/fhirtypes';
import { tokenParam, tokenQuery } from '../fhir/search-values';
import type { JobContext } from './context';
import type { Upload } from './task-ledger';
import { findOrCreateTask, findTask, JOB, uploadsOf } from './task-ledger';

/**
 * How the cron sweep finds uploads: DocumentReferences changed since the last complete scan (a
 * watermark kept in a Task of its own), judged by the same rule as the bot's Subscription
 * (`csvAttachments`). The first sweep scans them all, later ones only the recent ones. The scan
 * overlaps the last one by a margin, because a write's timestamp can precede its commit.
 */
export const SWEEP = {
  code: 'csv-import-sweep',
  identifierSystem: 'urn:medplum-csv-import:sweep',
  identifierValue: 'uploads-seen',
  watermarkExtension: 'urn:medplum-csv-import:uploads-seen-until',
} as const;

const OVERLAP_MS = 10 * 60_000;
/** The watermark is saved only when it moved this much: an idle project costs no write per sweep. */
const SAVE_STEP_MS = 10 * 60_000;
const PAGE_SIZE = '1000';

export interface Discovery {
  uploads: Upload[];
  /** False when the deadline cut the scan short (the watermark then stays). */
  complete: boolean;
}

export async function discoverUploads(context: JobContext): Promise<Discovery> {
  const { medplum, retrier } = context;
  const options = { cache: 'no-cache', maxRetries: 0 } as const;
  const sweepTask = await retrier.run('reading the sweep state', () =>
    medplum.searchOne('Task', { identifier: tokenParam(SWEEP.identifierSystem, SWEEP.identifierValue) }, options)
  );
  const watermark = Date.parse(sweepTask?.extension?.find((e) => e.url === SWEEP.watermarkExtension)?.valueDateTime ?? '');
  const query: Record<string, string> = { _sort: '_lastUpdated', _count: PAGE_SIZE };
  if (Number.isFinite(watermark)) {
    query._lastUpdated = `ge${new Date(watermark - OVERLAP_MS).toISOString()}`;
  }

  const uploads: Upload[] = [];
  let newest = Number.isFinite(watermark) ? watermark : 0;
  let complete = true;
  // Page by page by hand: each page is retried on its own, and the deadline is checked between pages.
  let url: string | undefined = medplum.fhirSearchUrl('DocumentReference', query).toString();
  for (let pageNumber = 0; url; pageNumber++) {
    // The first page is always read: recording new uploads (a Task each) is cheap and comes first.
    if (pageNumber > 0 && context.clock.now() >= context.workDeadline()) {
      complete = false;
      break;
    }
    const pageUrl: string = url;
    const page: Bundle<DocumentReference> = await retrier.run('looking for uploads', () =>
      medplum.get<Bundle<DocumentReference>>(pageUrl, options)
    );
    for (const entry of page.entry ?? []) {
      const doc = entry.resource;
      if (doc?.resourceType === 'DocumentReference') {
        uploads.push(...uploadsOf(doc, context.trusted));
        newest = Math.max(newest, Date.parse(doc.meta?.lastUpdated ?? '') || 0);
      }
    }
    const next = page.link?.find((l) => l.relation === 'next')?.url;
    url = next && next.startsWith(context.trusted.fhirBase.toString()) ? next : undefined;
  }
  if (complete && newest - (Number.isFinite(watermark) ? watermark : 0) >= SAVE_STEP_MS) {
    await saveWatermark(context, sweepTask, newest);
  }
  return { uploads, complete };
}

async function saveWatermark(context: JobContext, existing: Task | undefined, until: number): Promise<void> {
  const { medplum, retrier } = context;
  const extension = [{ url: SWEEP.watermarkExtension, valueDateTime: new Date(until).toISOString() }];
  const identifier = [{ system: SWEEP.identifierSystem, value: SWEEP.identifierValue }];
  const task: Task = {
    ...(existing ?? {
      resourceType: 'Task',
      status: 'in-progress',
      intent: 'order',
      code: { coding: [{ system: JOB.codeSystem, code: SWEEP.code, display: 'CSV upload sweep' }] },
      description: 'Where the CSV import sweep last looked for uploads',
      identifier,
    }),
    resourceType: 'Task',
    extension,
  };
  await retrier.run('saving the sweep state', () =>
    existing
      ? medplum.updateResource(task, { maxRetries: 0 })
      : medplum.createResourceIfNoneExist(task, `identifier=${tokenQuery(SWEEP.identifierSystem, SWEEP.identifierValue)}`, {
          maxRetries: 0,
        })
  );
}

/** Which of the uploads already have a Task (by key), in a few searches. */
export async function keysWithTasks(context: JobContext, uploads: readonly Upload[]): Promise<Set<string>> {
  const keys = new Set<string>();
  const { medplum, retrier } = context;
  for (let i = 0; i < uploads.length; i += 100) {
    const chunk = uploads.slice(i, i + 100);
    const identifier = chunk.map((u) => tokenParam(JOB.uploadIdentifierSystem, u.key)).join(',');
    const found = await retrier.run('looking up upload Tasks', () =>
      medplum.searchResources('Task', { identifier, _count: '1000' }, { cache: 'no-cache', maxRetries: 0 })
    );
    for (const task of found) {
      for (const id of task.identifier ?? []) {
        if (id.system === JOB.uploadIdentifierSystem && id.value) {
          keys.add(id.value);
        }
      }
    }
  }
  return keys;
}

/** The Task of an upload: found, or created (with the table the call names, if any). */
export async function uploadTask(context: JobContext, upload: Upload, table?: string): Promise<Task> {
  const { medplum, retrier } = context;
  return (
    (await retrier.run('finding the upload Task', () => findTask(medplum, upload))) ??
    (await retrier.run('creating the upload Task', () => findOrCreateTask(medplum, upload, table)))
  );
}

/** Looks for uploads changed since the last scan and gives the new ones their Task; returns them by key. */
export async function recordNewUploads(context: JobContext): Promise<Map<string, Upload>> {
  const discovery = await discoverUploads(context);
  const known = await keysWithTasks(context, discovery.uploads);
  for (const upload of discovery.uploads.filter((u) => !known.has(u.key))) {
    await context.retrier.run('creating an upload Task', () => findOrCreateTask(context.medplum, upload));
    known.add(upload.key);
  }
  return new Map(discovery.uploads.map((u) => [u.key, u]));
}
