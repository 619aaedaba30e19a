import type { MedplumClient } from '@medplum/core';
import { normalizeErrorString } from '@medplum/core';
import type { DocumentReference, Task } from '@medplum/fhirtypes';
import type { CsvDocument } from '../csv/document';
import type { FileShape } from '../engine/inspect';
import { inspectCsv } from '../engine/inspect';
import { orderByDependencies } from '../engine/order';
import { ImportFileError } from '../errors';
import { downloadCsv } from '../input/bot-input';
import { defaultTables, findTable } from '../tables';
import type { TableDefinition } from '../tables/types';
import type { Upload } from './task-ledger';
import {
  findOrCreateTask,
  findTask,
  isClaimable,
  isFinished,
  listImportTasks,
  taskTable,
  updateTaskUnlessTaken,
  uploadKey,
  uploadOf,
} from './task-ledger';
import type { JobOptions, UploadJobResult } from './upload-job';
import { runUploadJob } from './upload-job';

export interface SchedulerOptions extends Omit<JobOptions, 'deadline'> {
  /** Time this invocation may spend, safely below the bot timeout. */
  budgetMs: number;
  tables?: readonly TableDefinition[];
}

export type UploadEventResult = UploadJobResult | { outcome: 'ignored'; message: string };

export interface ScheduledRunResult {
  jobs: UploadJobResult[];
  /** Uploads still to do after this run (waiting, paused, or not reached in time). */
  pending: number;
}

interface PreparedUpload {
  doc: CsvDocument;
  shape?: FileShape;
  problem?: string;
}

async function prepare(medplum: MedplumClient, upload: Upload, tables: readonly TableDefinition[]): Promise<PreparedUpload> {
  const doc = await downloadCsv(medplum, upload.attachment.url as string, upload.fileName);
  try {
    return { doc, shape: await inspectCsv(doc, tables) };
  } catch (err) {
    if (err instanceof ImportFileError) {
      return { doc, problem: err.message };
    }
    throw err;
  }
}

/** Tables that have imports still to do; a child table waits while any of its parents has one. */
function blockingParents(table: TableDefinition, tasks: readonly Task[], self: Task, tables: readonly TableDefinition[]): string[] {
  const unfinished = new Set(
    tasks.filter((t) => t.id !== self.id && !isFinished(t)).map((t) => taskTable(t)).filter(Boolean) as string[]
  );
  const blocking: string[] = [];
  const visit = (name: string, seen: Set<string>): void => {
    for (const parent of findTable(name, tables)?.dependsOn ?? []) {
      if (seen.has(parent)) {
        continue;
      }
      seen.add(parent);
      if (unfinished.has(parent)) {
        blocking.push(parent);
      }
      visit(parent, seen);
    }
  };
  visit(table.name, new Set());
  return blocking;
}

/** Records a file that cannot be imported at all on its Task. */
async function failTask(medplum: MedplumClient, task: Task, upload: Upload, problem: string): Promise<UploadJobResult> {
  await updateTaskUnlessTaken(medplum, task, {
    status: 'failed',
    businessStatus: 'not imported',
    statusReason: problem,
    error: problem,
  });
  return { task: `Task/${task.id}`, file: upload.fileName, outcome: 'failed', message: problem };
}

/** Marks a Task as waiting for its parents (only when that changes, to keep history short). */
async function markWaiting(medplum: MedplumClient, task: Task, parents: string[]): Promise<void> {
  const text = `waiting for ${parents.join(', ')} to be imported first`;
  if (task.businessStatus?.text !== text) {
    await updateTaskUnlessTaken(medplum, task, { status: 'requested', businessStatus: text });
  }
}

async function runOne(
  medplum: MedplumClient,
  task: Task,
  upload: Upload,
  prepared: PreparedUpload,
  tasks: readonly Task[],
  options: SchedulerOptions,
  deadline: number
): Promise<UploadJobResult> {
  const tables = options.tables ?? defaultTables;
  if (!prepared.shape) {
    return failTask(medplum, task, upload, prepared.problem ?? 'unreadable file');
  }
  const parents = blockingParents(prepared.shape.table, tasks, task, tables);
  if (parents.length) {
    await markWaiting(medplum, task, parents);
    return { task: `Task/${task.id}`, file: upload.fileName, table: prepared.shape.table.name, outcome: 'waiting', message: `waiting for ${parents.join(', ')}` };
  }
  return runUploadJob(medplum, task, prepared.doc, prepared.shape, { ...options, deadline });
}

/** The answer for an upload whose Task is finished or claimed by a live invocation; undefined when it is ours to run. */
function settled(task: Task, upload: Upload): UploadJobResult | undefined {
  if (isFinished(task)) {
    return { task: `Task/${task.id}`, file: upload.fileName, outcome: 'already-done', message: `already ${task.status}` };
  }
  if (!isClaimable(task, Date.now())) {
    return { task: `Task/${task.id}`, file: upload.fileName, outcome: 'busy', message: 'another invocation is importing it' };
  }
  return undefined;
}

/**
 * A Subscription fired for a DocumentReference (create or update): import its CSV under its Task,
 * once. Another invocation for the same upload finds the Task claimed or done and stops.
 */
export async function handleUploadEvent(
  medplum: MedplumClient,
  documentReference: DocumentReference,
  options: SchedulerOptions
): Promise<UploadEventResult> {
  const deadline = Date.now() + options.budgetMs;
  const tables = options.tables ?? defaultTables;
  const upload = uploadOf(documentReference);
  if (!upload) {
    return { outcome: 'ignored', message: `DocumentReference/${documentReference.id} has no CSV attachment with a URL (yet)` };
  }
  // A repeated event for an upload that is done or in hand is answered without downloading it.
  const existing = await findTask(medplum, upload);
  const settledEarly = existing && settled(existing, upload);
  if (settledEarly) {
    return settledEarly;
  }
  const prepared = await prepare(medplum, upload, tables);
  const task = existing ?? (await findOrCreateTask(medplum, upload, prepared.shape?.table.name));
  // Another invocation may have created and claimed the Task while this one downloaded the file.
  const settledNow = settled(task, upload);
  if (settledNow) {
    return settledNow;
  }
  const tasks = await listImportTasks(medplum);
  return runOne(medplum, task, upload, prepared, tasks, options, deadline);
}

/**
 * The scheduled (cron) run: finds uploads without a finished Task and imports them, parents
 * first, until the time budget is used; unfinished work resumes from its checkpoint next run.
 */
export async function runScheduled(medplum: MedplumClient, options: SchedulerOptions): Promise<ScheduledRunResult> {
  const deadline = Date.now() + options.budgetMs;
  const tables = options.tables ?? defaultTables;
  const log = options.log;

  let tasks = await listImportTasks(medplum);
  const byKey = new Map(tasks.map((t) => [uploadKey(t), t]));
  const uploads = new Map<string, Upload>();
  for await (const page of medplum.searchResourcePages(
    'DocumentReference',
    { contenttype: 'text/csv', _count: '1000' },
    { cache: 'no-cache' }
  )) {
    for (const doc of page) {
      const upload = uploadOf(doc);
      if (upload) {
        uploads.set(upload.key, upload);
      }
    }
  }

  // Uploads nobody has seen yet get their Task (and their table, from the header). The parsed
  // files are not kept: holding every new upload in memory until its turn does not scale, so a
  // job downloads its file again when it runs.
  for (const [key, upload] of uploads) {
    if (!byKey.has(key)) {
      try {
        const ready = await prepare(medplum, upload, tables);
        const task = await findOrCreateTask(medplum, upload, ready.shape?.table.name);
        byKey.set(key, task);
      } catch (err) {
        log(`${upload.fileName}: could not read the upload: ${normalizeErrorString(err)}`);
      }
    }
  }
  tasks = [...byKey.values()].filter((t): t is Task => Boolean(t));

  const now = Date.now();
  const runnable = orderByDependencies(
    tasks.filter((t) => isClaimable(t, now) && uploads.has(uploadKey(t) as string)),
    (t) => findTable(taskTable(t) ?? '', tables)
  );
  const jobs: UploadJobResult[] = [];
  for (const task of runnable) {
    if (Date.now() >= deadline) {
      break;
    }
    const key = uploadKey(task) as string;
    const upload = uploads.get(key) as Upload;
    try {
      const ready = await prepare(medplum, upload, tables);
      const job = await runOne(medplum, task, upload, ready, tasks, options, deadline);
      jobs.push(job);
      log(`${job.file}: ${job.outcome}${job.message ? ` (${job.message})` : ''}`);
      // Later tasks judge their parents on the ledger as it is now.
      const status = job.outcome === 'completed' || job.outcome === 'failed' ? job.outcome : undefined;
      tasks = tasks.map((t) => (t.id === task.id && status ? { ...t, status } : t));
    } catch (err) {
      log(`${upload.fileName}: ${normalizeErrorString(err)}`);
      jobs.push({ task: `Task/${task.id}`, file: upload.fileName, outcome: 'interrupted', message: normalizeErrorString(err) });
    }
  }
  return { jobs, pending: tasks.filter((t) => !isFinished(t)).length };
}
