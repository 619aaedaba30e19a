import type { MedplumClient } from '@medplum/core';
import { getReferenceString } from '@medplum/core';
import { statusOf } from '../execute/executor';
import type { Attachment, DocumentReference, Extension, Task, TaskOutput } from '@medplum/fhirtypes';
import { csvAttachment } from '../input/bot-input';
import type { ImportReport } from '../report';

/**
 * The job ledger: one Task per upload (DocumentReference + the Binary it points to), so a team
 * sees every import, its state and its result from the Medplum app alone.
 * status: requested (queued or waiting for parent tables) -> in-progress -> completed | failed.
 */
export const JOB = {
  codeSystem: 'urn:medplum-csv-import',
  code: 'csv-import',
  uploadIdentifierSystem: 'urn:medplum-csv-import:upload',
  resumeAfterRowExtension: 'urn:medplum-csv-import:resume-after-row',
  leaseUntilExtension: 'urn:medplum-csv-import:lease-until',
  reportOutput: 'report',
  rejectedRowsOutput: 'rejected-rows',
  errorOutput: 'error',
} as const;

/** A CSV upload: its DocumentReference, its CSV attachment and a stable key for its content. */
export interface Upload {
  documentReference: DocumentReference;
  attachment: Attachment;
  /** DocumentReference id + Binary id: a new file attached to the same document is a new upload. */
  key: string;
  fileName: string;
}

/**
 * The upload a DocumentReference describes, or undefined when it has no CSV attachment with a URL
 * yet (the SDK creates the DocumentReference first and adds the URL in an update).
 */
export function uploadOf(doc: DocumentReference): Upload | undefined {
  const attachment = csvAttachment(doc);
  if (!doc.id || !attachment?.url || !isCsv(attachment)) {
    return undefined;
  }
  // Attachment URLs are re-signed on every read; the Binary id inside them is stable.
  const binaryId = /(?:^|\/)binary\/([^/?#]+)/i.exec(attachment.url)?.[1] ?? stableHash(attachment.url.split('?')[0]);
  return {
    documentReference: doc,
    attachment,
    key: `${doc.id}.${binaryId}`,
    fileName: attachment.title ?? doc.description ?? `DocumentReference/${doc.id}`,
  };
}

function isCsv(attachment: Attachment): boolean {
  return !attachment.contentType || attachment.contentType.startsWith('text/csv') || attachment.contentType === 'text/plain';
}

function stableHash(text: string): string {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  }
  return (hash >>> 0).toString(16);
}

/** The Task of an upload, if it has one. */
export async function findTask(medplum: MedplumClient, upload: Upload): Promise<Task | undefined> {
  return medplum.searchOne('Task', { identifier: `${JOB.uploadIdentifierSystem}|${upload.key}` }, { cache: 'no-cache' });
}

/** The Task of an upload, created once however many invocations race for it (conditional create). */
export async function findOrCreateTask(medplum: MedplumClient, upload: Upload, table: string | undefined): Promise<Task> {
  const now = new Date().toISOString();
  const task: Task = {
    resourceType: 'Task',
    identifier: [{ system: JOB.uploadIdentifierSystem, value: upload.key }],
    status: 'requested',
    intent: 'order',
    code: { coding: [{ system: JOB.codeSystem, code: JOB.code, display: 'CSV import' }], text: 'CSV import' },
    description: `Import ${upload.fileName}`,
    focus: { reference: getReferenceString(upload.documentReference), display: upload.fileName },
    authoredOn: now,
    lastModified: now,
    businessStatus: { text: 'queued' },
    input: [
      { type: { text: 'file' }, valueString: upload.fileName },
      ...(table ? [{ type: { text: 'table' }, valueString: table }] : []),
    ],
  };
  return medplum.createResourceIfNoneExist(task, `identifier=${JOB.uploadIdentifierSystem}|${upload.key}`);
}

/** Every import Task of the project, all pages. */
export async function listImportTasks(medplum: MedplumClient): Promise<Task[]> {
  const tasks: Task[] = [];
  for await (const page of medplum.searchResourcePages(
    'Task',
    { code: `${JOB.codeSystem}|${JOB.code}`, _count: '1000' },
    { cache: 'no-cache' }
  )) {
    tasks.push(...page);
  }
  return tasks;
}

export function taskInput(task: Task, name: string): string | undefined {
  return task.input?.find((i) => i.type.text === name)?.valueString;
}

export function taskTable(task: Task): string | undefined {
  return taskInput(task, 'table');
}

export function uploadKey(task: Task): string | undefined {
  return task.identifier?.find((i) => i.system === JOB.uploadIdentifierSystem)?.value;
}

export function resumeAfterRow(task: Task): number {
  return task.extension?.find((e) => e.url === JOB.resumeAfterRowExtension)?.valueInteger ?? 0;
}

export function taskReport(task: Task): ImportReport | undefined {
  const text = task.output?.find((o) => o.type.text === JOB.reportOutput)?.valueString;
  return text ? (JSON.parse(text) as ImportReport) : undefined;
}

export function rejectedRowsAttachment(task: Task): Attachment | undefined {
  return task.output?.find((o) => o.type.text === JOB.rejectedRowsOutput)?.valueAttachment;
}

export function isFinished(task: Task): boolean {
  return task.status === 'completed' || task.status === 'failed' || task.status === 'cancelled';
}

/** An in-progress Task whose lease ran out was left by an invocation that stopped or died. */
export function isClaimable(task: Task, now: number): boolean {
  if (task.status === 'requested') {
    return true;
  }
  if (task.status !== 'in-progress') {
    return false;
  }
  const until = task.extension?.find((e) => e.url === JOB.leaseUntilExtension)?.valueDateTime;
  return !until || Date.parse(until) <= now;
}

function withExtension(task: Task, url: string, extension: Extension | undefined): Extension[] | undefined {
  const others = (task.extension ?? []).filter((e) => e.url !== url);
  const all = extension ? [...others, extension] : others;
  return all.length ? all : undefined;
}

export interface TaskChange {
  status?: Task['status'];
  businessStatus?: string;
  statusReason?: string;
  /** Lease end (ms since epoch); 0 releases the lease. */
  leaseUntil?: number;
  resumeAfterRow?: number;
  report?: ImportReport;
  rejectedRows?: Attachment;
  error?: string;
}

/** Applies a change to a Task, as a new resource. */
export function changedTask(task: Task, change: TaskChange): Task {
  const next: Task = { ...task, lastModified: new Date().toISOString() };
  if (change.status) {
    next.status = change.status;
    if (change.status === 'in-progress' && !task.executionPeriod?.start) {
      next.executionPeriod = { start: next.lastModified };
    }
    if (change.status === 'completed' || change.status === 'failed') {
      next.executionPeriod = { ...next.executionPeriod, end: next.lastModified };
    }
  }
  if (change.businessStatus !== undefined) {
    next.businessStatus = { text: change.businessStatus };
  }
  if (change.statusReason !== undefined) {
    next.statusReason = { text: change.statusReason };
  }
  if (change.leaseUntil !== undefined) {
    next.extension = withExtension(
      next,
      JOB.leaseUntilExtension,
      change.leaseUntil > 0 ? { url: JOB.leaseUntilExtension, valueDateTime: new Date(change.leaseUntil).toISOString() } : undefined
    );
  }
  if (change.resumeAfterRow !== undefined) {
    next.extension = withExtension(next, JOB.resumeAfterRowExtension, {
      url: JOB.resumeAfterRowExtension,
      valueInteger: change.resumeAfterRow,
    });
  }
  const outputs: TaskOutput[] = (next.output ?? []).filter(
    (o) =>
      !(change.report && o.type.text === JOB.reportOutput) &&
      !(change.rejectedRows && o.type.text === JOB.rejectedRowsOutput) &&
      !(change.error && o.type.text === JOB.errorOutput)
  );
  if (change.report) {
    outputs.push({ type: { text: JOB.reportOutput }, valueString: JSON.stringify(change.report) });
  }
  if (change.rejectedRows) {
    outputs.push({ type: { text: JOB.rejectedRowsOutput }, valueAttachment: change.rejectedRows });
  }
  if (change.error) {
    outputs.push({ type: { text: JOB.errorOutput }, valueString: change.error });
  }
  next.output = outputs.length ? outputs : undefined;
  return next;
}

/** The Task changed since we read it: another invocation holds or finished the job. */
export class LostClaimError extends Error {
  constructor(reference: string) {
    super(`${reference} was changed by another invocation`);
    this.name = 'LostClaimError';
  }
}

/**
 * Writes a Task change only if nobody changed the Task since this invocation read it
 * (If-Match on its version): the claim cannot be won twice, and a lost claim is noticed.
 */
export async function updateTaskIfUnchanged(medplum: MedplumClient, task: Task, change: TaskChange): Promise<Task> {
  const versionId = task.meta?.versionId;
  try {
    return await medplum.updateResource(changedTask(task, change), {
      headers: versionId ? { 'If-Match': `W/"${versionId}"` } : undefined,
    });
  } catch (err) {
    if (statusOf(err) === 412) {
      throw new LostClaimError(`Task/${task.id}`);
    }
    throw err;
  }
}

/** As updateTaskIfUnchanged, for changes that need not happen if another invocation took the Task. */
export async function updateTaskUnlessTaken(medplum: MedplumClient, task: Task, change: TaskChange): Promise<void> {
  try {
    await updateTaskIfUnchanged(medplum, task, change);
  } catch (err) {
    if (!(err instanceof LostClaimError)) {
      throw err;
    }
  }
}
