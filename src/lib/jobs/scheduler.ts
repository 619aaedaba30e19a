import { normalizeErrorString } from '@medplum/core';
import type { DocumentReference, Task } from '@medplum/fhirtypes';
import { OutOfTimeError } from '../execute/quota';
import { statusOf } from '../execute/server-link';
import { findTable } from '../tables';
import { orderByDependencies } from '../engine/order';
import type { JobContext } from './context';
import { discoverUploads, keysWithTasks } from './discovery';
import { PendingLedger } from './pending-ledger';
import type { Upload } from './task-ledger';
import {
  changedTask,
  checkpointOf,
  findOrCreateTask,
  findTask,
  isClaimable,
  isFinished,
  listPendingTasks,
  putTaskIfVersion,
  taskTable,
  uploadKey,
  uploadsOf,
} from './task-ledger';
import type { UploadJobResult } from './upload-job';
import { runUploadJob } from './upload-job';

export type UploadEventResult =
  | UploadJobResult
  | { outcome: 'ignored'; message: string }
  /** A document with several CSV attachments: one job each. */
  | { outcome: 'several'; jobs: UploadJobResult[] };

export interface SweepResult {
  jobs: UploadJobResult[];
  /** Uploads still to do after this run (waiting, paused, or not reached in time). */
  pending: number;
}

/**
 * A Subscription fired for a DocumentReference (create or update), or it was posted to $execute:
 * every CSV attachment gets its Task first (so each is accounted for whatever happens next), then
 * each is imported under its Task, once. Another invocation for the same upload finds the Task
 * claimed or done and stops.
 */
export async function handleUploadEvent(context: JobContext, doc: DocumentReference, table?: string): Promise<UploadEventResult> {
  const uploads = uploadsOf(doc, context.trusted);
  if (uploads.length === 0) {
    return { outcome: 'ignored', message: `DocumentReference/${doc.id} has no current CSV attachment with a URL (yet)` };
  }
  const { retrier, medplum } = context;
  const tasks: Task[] = [];
  for (const upload of uploads) {
    tasks.push(
      (await retrier.run('finding the upload Task', () => findTask(medplum, upload))) ??
        (await retrier.run('creating the upload Task', () => findOrCreateTask(medplum, upload, table)))
    );
  }
  const ledger = new PendingLedger(await retrier.run('listing pending imports', () => listPendingTasks(medplum)), context.tables);
  const jobs: UploadJobResult[] = [];
  for (const [i, upload] of uploads.entries()) {
    jobs.push(await runIfDue(context, tasks[i], upload, ledger));
  }
  return jobs.length === 1 ? jobs[0] : { outcome: 'several', jobs };
}

/**
 * The scheduled (cron) run: records new uploads (a Task each), closes the Tasks of uploads that
 * were deleted or replaced, then imports what is due, parents first, until the time budget is
 * used; unfinished work resumes from its checkpoint on a later run. Files are downloaded only when
 * their job runs.
 */
export async function runSweep(context: JobContext): Promise<SweepResult> {
  const { retrier, medplum, log } = context;
  const jobs: UploadJobResult[] = [];
  let ledger: PendingLedger | undefined;
  try {
    const discovery = await discoverUploads(context);
    const known = await keysWithTasks(context, discovery.uploads);
    for (const upload of discovery.uploads.filter((u) => !known.has(u.key))) {
      await retrier.run('creating an upload Task', () => findOrCreateTask(medplum, upload));
      known.add(upload.key);
    }
    ledger = new PendingLedger(await retrier.run('listing pending imports', () => listPendingTasks(medplum)), context.tables);
    const uploads = new Map(discovery.uploads.map((u) => [u.key, u]));

    for (const task of dueOrder(context, ledger)) {
      if (context.clock.now() >= context.deadline) {
        break;
      }
      const upload = uploads.get(uploadKey(task) ?? '') ?? (await currentUpload(context, task));
      if (!upload) {
        await closeOrphan(context, task, ledger);
        continue;
      }
      const job = await runIfDue(context, task, upload, ledger);
      jobs.push(job);
      log(`${job.file}: ${job.outcome}${job.message ? ` (${job.message})` : ''}`);
      if (job.outcome === 'paused') {
        break; // out of time or quota: the next run goes on
      }
    }
  } catch (err) {
    if (!(err instanceof OutOfTimeError)) {
      throw err;
    }
    log(`sweep stopped: ${err.message}`);
  }
  return { jobs, pending: ledger?.pending.length ?? 0 };
}

/** Claimable Tasks in the order to run them: files of unknown table first, then parents before children. */
function dueOrder(context: JobContext, ledger: PendingLedger): Task[] {
  const now = context.clock.now();
  const claimable = ledger.pending.filter((t) => isClaimable(t, now));
  const byAge = [...claimable].sort((a, b) => (a.authoredOn ?? '').localeCompare(b.authoredOn ?? ''));
  const unknown = byAge.filter((t) => !taskTable(t));
  const known = byAge.filter((t) => taskTable(t));
  return [...unknown, ...orderByDependencies(known, (t) => findTable(taskTable(t) ?? '', context.tables))];
}

/**
 * Runs an upload's job when it is due; otherwise says why not, without downloading anything: a
 * finished or claimed Task, parents still pending, or rows waiting for parents that have not
 * changed since.
 */
async function runIfDue(context: JobContext, task: Task, upload: Upload, ledger: PendingLedger): Promise<UploadJobResult> {
  const base = { task: `Task/${task.id}`, file: upload.fileName, table: taskTable(task) };
  if (isFinished(task)) {
    return { ...base, outcome: 'already-done', message: `already ${task.status}` };
  }
  if (!isClaimable(task, context.clock.now())) {
    return { ...base, outcome: 'busy', message: 'another invocation is importing it' };
  }
  const table = findTable(taskTable(task) ?? '', context.tables);
  if (table) {
    const parents = ledger.blockingParents(table, task);
    if (parents.length) {
      const message = `waiting for ${parents.join(', ')} to be imported first`;
      await noteWaiting(context, task, message);
      return { ...base, outcome: 'waiting', message };
    }
    const checkpoint = checkpointOf(task);
    if (checkpoint.retryRows && !(await retryIsDue(context, task, table.name, checkpoint.deferredAt ?? 0, ledger))) {
      return { ...base, outcome: 'waiting', message: task.businessStatus?.text ?? 'rows wait for their parents' };
    }
  }
  try {
    await context.quota.ensureRoomToStart(context.deadline);
  } catch (err) {
    if (err instanceof OutOfTimeError) {
      return { ...base, outcome: 'paused', message: `not started: ${err.message}; the next run takes it` };
    }
    throw err;
  }
  const job = await runUploadJob(context, task, upload, ledger);
  ledger.update({ ...task, status: statusAfter(job, task) });
  return job;
}

function statusAfter(job: UploadJobResult, task: Task): Task['status'] {
  switch (job.outcome) {
    case 'completed':
    case 'failed':
    case 'cancelled':
      return job.outcome;
    default:
      return task.status;
  }
}

/**
 * Rows that waited for their parents are retried once a parent table's upload finished after
 * they were deferred, or when the wait is over (then for the last time).
 */
async function retryIsDue(context: JobContext, task: Task, table: string, deferredAt: number, ledger: PendingLedger): Promise<boolean> {
  const definition = findTable(table, context.tables);
  if (!definition) {
    return true;
  }
  const parents = ledger.parentTables(definition);
  const since = Date.parse(task.authoredOn ?? '') || 0;
  const lastParent = await ledger.lastFinished(context, parents, deferredAt);
  if (lastParent !== undefined && lastParent >= deferredAt) {
    return true;
  }
  return context.clock.now() >= Math.max(since, lastParent ?? 0) + context.parentWaitMs;
}

/** Records why a Task waits, when that changed (to keep its history short). Losing the race is fine. */
async function noteWaiting(context: JobContext, task: Task, message: string): Promise<void> {
  if (task.businessStatus?.text === message && task.status === 'requested') {
    return;
  }
  await saveUnlessTaken(context, task, { status: 'requested', businessStatus: message });
}

async function saveUnlessTaken(context: JobContext, task: Task, change: Parameters<typeof changedTask>[1]): Promise<void> {
  try {
    await context.retrier.run(`updating Task/${task.id}`, () =>
      putTaskIfVersion(context.medplum, task.meta?.versionId, changedTask(task, change), `Task/${task.id}`)
    );
  } catch (err) {
    if (err instanceof OutOfTimeError) {
      throw err;
    }
    context.log(`Task/${task.id}: not updated (${normalizeErrorString(err)})`);
  }
}

/** The upload a Task was made for, read afresh; undefined when it was deleted, replaced or withdrawn. */
async function currentUpload(context: JobContext, task: Task): Promise<Upload | undefined> {
  const reference = task.focus?.reference ?? '';
  const id = /^DocumentReference\/([A-Za-z0-9\-.]{1,64})$/.exec(reference)?.[1];
  if (!id) {
    return undefined;
  }
  let doc: DocumentReference;
  try {
    doc = await context.retrier.run(`reading ${reference}`, () =>
      context.medplum.readResource('DocumentReference', id, { cache: 'no-cache', maxRetries: 0 })
    );
  } catch (err) {
    const status = statusOf(err);
    if (status === 404 || status === 410) {
      return undefined;
    }
    throw err;
  }
  return uploadsOf(doc, context.trusted).find((u) => u.key === uploadKey(task));
}

/**
 * Closes the Task of an upload that is gone (deleted, replaced by another file, or withdrawn):
 * cancelled with the reason, so that it never blocks the tables that depend on it.
 */
async function closeOrphan(context: JobContext, task: Task, ledger: PendingLedger): Promise<void> {
  const reason = 'the upload was deleted, replaced by another file, or withdrawn before it was imported';
  await saveUnlessTaken(context, task, { status: 'cancelled', businessStatus: 'not imported', statusReason: reason, leaseUntil: 0 });
  ledger.update({ ...task, status: 'cancelled' });
  context.log(`Task/${task.id}: cancelled: ${reason}`);
}
