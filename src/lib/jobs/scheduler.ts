import { normalizeErrorString } from '@medplum/core';
import type { DocumentReference, Task } from '@medplum/fhirtypes';
import { OutOfTimeError } from '../execute/quota';
import { statusOf } from '../execute/server-link';
import { findTable } from '../tables';
import { orderByDependencies } from '../engine/order';
import type { JobContext } from './context';
import { recordNewUploads, uploadTask } from './discovery';
import { PendingLedger } from './pending-ledger';
import type { Upload } from './task-ledger';
import {
  changedTask,
  checkpointOf,
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
  let ledger: PendingLedger;
  try {
    for (const upload of uploads) {
      tasks.push(await uploadTask(context, upload, table));
    }
    ledger = new PendingLedger(await retrier.run('listing pending imports', () => listPendingTasks(medplum)), context.tables);
  } catch (err) {
    if (!(err instanceof OutOfTimeError)) {
      throw err;
    }
    // The server would not answer in time (rate limits): the cron sweep finds the upload later.
    const message = `${err.message}; the next sweep records and imports the upload`;
    return { outcome: 'interrupted', task: tasks[0] ? `Task/${tasks[0].id}` : '', file: uploads[0].fileName, message };
  }
  const jobs: UploadJobResult[] = [];
  for (const [i, upload] of uploads.entries()) {
    jobs.push(await runIfDue(context, tasks[i], upload, ledger));
  }
  return jobs.length === 1 ? jobs[0] : { outcome: 'several', jobs };
}

/**
 * The scheduled (cron) run: imports what is due, parents first, until the time budget is used,
 * and records new uploads (a Task each). Pending work comes first: when nothing pending can run,
 * the new uploads are looked for first, else after, with the time left (Subscriptions give most
 * uploads their Task at once; this is the safety net). Tasks of uploads that were deleted or
 * replaced are closed. Files are downloaded only when their job runs; unfinished work resumes
 * from its checkpoint on a later run.
 */
export async function runSweep(context: JobContext): Promise<SweepResult> {
  const jobs: UploadJobResult[] = [];
  let ledger: PendingLedger | undefined;
  try {
    ledger = await pendingLedger(context);
    let uploads = new Map<string, Upload>();
    const discoverFirst = dueOrder(context, ledger).length === 0;
    if (discoverFirst) {
      uploads = await recordNewUploads(context);
      ledger = await pendingLedger(context);
    }
    if (ledger.pending.length === 0) {
      return { jobs, pending: 0 };
    }
    // Only now are the tables needed (stored mappings are read once, when there is work).
    await context.prepareTables();
    ledger = new PendingLedger(ledger.pending, context.tables);
    if (await runDue(context, ledger, uploads, jobs)) {
      return { jobs, pending: ledger.pending.length };
    }
    if (!discoverFirst) {
      const found = await recordNewUploads(context);
      ledger = await pendingLedger(context);
      // The new uploads, and jobs that waited for what may have just been imported, in order.
      const handled = new Set(jobs.filter((j) => j.outcome !== 'waiting').map((j) => j.task));
      const next = new PendingLedger(ledger.pending, context.tables);
      await runDue(context, next, found, jobs, (task) => !handled.has(`Task/${task.id}`));
    }
  } catch (err) {
    if (!(err instanceof OutOfTimeError)) {
      throw err;
    }
    context.log(`sweep stopped: ${err.message}`);
  }
  return { jobs, pending: ledger?.pending.length ?? 0 };
}

async function pendingLedger(context: JobContext): Promise<PendingLedger> {
  const tasks = await context.retrier.run('listing pending imports', () => listPendingTasks(context.medplum));
  return new PendingLedger(tasks, context.tables);
}

/** Runs the due jobs in order until time (or quota) runs out; true when it stopped for that. */
async function runDue(
  context: JobContext,
  ledger: PendingLedger,
  uploads: ReadonlyMap<string, Upload>,
  jobs: UploadJobResult[],
  include: (task: Task) => boolean = () => true
): Promise<boolean> {
  for (const task of dueOrder(context, ledger).filter(include)) {
    if (context.clock.now() >= context.workDeadline()) {
      return true;
    }
    const upload = uploads.get(uploadKey(task) ?? '') ?? (await currentUpload(context, task));
    if (!upload) {
      await closeOrphan(context, task, ledger);
      continue;
    }
    const job = await runIfDue(context, task, upload, ledger);
    jobs.push(job);
    context.log(`${job.file}: ${job.outcome}${job.message ? ` (${job.message})` : ''}`);
    if (job.outcome === 'paused') {
      return true; // out of time or quota: the next run goes on
    }
  }
  return context.clock.now() >= context.workDeadline();
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
    await context.quota.ensureRoomToStart(context.workDeadline());
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
