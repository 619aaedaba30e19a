import type { MedplumClient } from '@medplum/core';
import { getReferenceString } from '@medplum/core';
import type { Attachment, DocumentReference, Extension, Task, TaskOutput } from '@medplum/fhirtypes';
import type { Retrier } from '../execute/retry';
import { statusOf } from '../execute/server-link';
import { tokenParam, tokenQuery } from '../fhir/search-values';
import type { TrustedLocations } from '../input/download';
import { binaryIdOf, DownloadError } from '../input/download';
import { csvAttachments } from '../input/uploads';
import type { ImportReport } from '../report';
import { withListsCapped } from '../report';
import { decodeRows, encodeRows } from './row-sets';

/**
 * The job ledger: one Task per upload (a CSV attachment of a DocumentReference), so a team sees
 * every import, its state and its result from the Medplum app alone.
 * status: requested (queued, or waiting for parent tables) -> in-progress -> completed | failed,
 * or cancelled when the upload was deleted or replaced before it was imported.
 */
export const JOB = {
  codeSystem: 'urn:medplum-csv-import',
  code: 'csv-import',
  uploadIdentifierSystem: 'urn:medplum-csv-import:upload',
  /** `DocumentReference.type.coding` with this system names the mapping (table) an upload is imported with. */
  uploadTableSystem: 'urn:medplum-csv-import:table',
  extensions: {
    leaseUntil: 'urn:medplum-csv-import:lease-until',
    resumeAfterRow: 'urn:medplum-csv-import:resume-after-row',
    doneRows: 'urn:medplum-csv-import:done-rows',
    retryRows: 'urn:medplum-csv-import:retry-rows',
    deferredRows: 'urn:medplum-csv-import:deferred-rows',
    deferredAt: 'urn:medplum-csv-import:deferred-at',
    run: 'urn:medplum-csv-import:run',
  },
  outputs: {
    report: 'report',
    rejectedRows: 'rejected-rows',
    rejectedRowsPart: 'rejected-rows-part',
    error: 'error',
  },
  inputs: { file: 'file', table: 'table' },
} as const;

/** Errors and skips listed in a Task's report; the counts stay exact and the rejected-rows file has every row. */
export const TASK_REPORT_LIMIT = 200;

/** One CSV attachment of a DocumentReference, the unit an import Task is kept for. */
export interface Upload {
  documentReference: DocumentReference;
  attachment: Attachment;
  /** `<DocumentReference id>.<Binary id>`: a new file attached to the same document is a new upload. */
  key: string;
  /** The Binary holding the bytes; undefined when the URL is not one of this server's. */
  binaryId?: string;
  /** Why the bytes cannot be downloaded (the URL points elsewhere). */
  refusal?: string;
  fileName: string;
}

/**
 * The uploads a DocumentReference describes: one per CSV attachment with a URL (none yet when
 * the SDK has created the document but not added the file). The key holds only id characters,
 * whatever the attachment's URL says.
 */
export function uploadsOf(doc: DocumentReference, trusted: TrustedLocations): Upload[] {
  if (!doc.id) {
    return [];
  }
  return csvAttachments(doc).map((attachment) => {
    const fileName = attachment.title?.trim() || doc.description?.trim() || `DocumentReference/${doc.id}`;
    try {
      const binaryId = binaryIdOf(attachment.url as string, trusted);
      return { documentReference: doc, attachment, key: `${doc.id}.${binaryId}`, binaryId, fileName };
    } catch (err) {
      const refusal = err instanceof DownloadError ? err.message : String(err);
      return { documentReference: doc, attachment, key: `${doc.id}.url-${stableHash(attachment.url as string)}`, refusal, fileName };
    }
  });
}

function stableHash(text: string): string {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  }
  return (hash >>> 0).toString(16);
}

const NO_CACHE = { cache: 'no-cache', maxRetries: 0 } as const;

/** The Task of an upload, if it has one. */
export async function findTask(medplum: MedplumClient, upload: Upload): Promise<Task | undefined> {
  return medplum.searchOne('Task', { identifier: tokenParam(JOB.uploadIdentifierSystem, upload.key) }, NO_CACHE);
}

/** The mapping (table) an upload names on its DocumentReference, if any. */
export function tableNamedOn(doc: DocumentReference): string | undefined {
  const code = doc.type?.coding?.find((c) => c.system === JOB.uploadTableSystem && typeof c.code === 'string' && c.code.trim())?.code;
  return code?.trim();
}

/**
 * The Task of an upload, created once however many invocations race for it (conditional create).
 * Its table: the one the call names, else the one the upload names (tableNamedOn), else none yet.
 */
export async function findOrCreateTask(medplum: MedplumClient, upload: Upload, calledFor?: string): Promise<Task> {
  const table = calledFor ?? tableNamedOn(upload.documentReference);
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
      { type: { text: JOB.inputs.file }, valueString: upload.fileName },
      ...(table ? [{ type: { text: JOB.inputs.table }, valueString: table }] : []),
    ],
  };
  return medplum.createResourceIfNoneExist(task, `identifier=${tokenQuery(JOB.uploadIdentifierSystem, upload.key)}`, NO_CACHE);
}

/** Every import Task not finished yet (queued, waiting, running or paused), all pages. */
export async function listPendingTasks(medplum: MedplumClient): Promise<Task[]> {
  const tasks: Task[] = [];
  for await (const page of medplum.searchResourcePages(
    'Task',
    { code: tokenParam(JOB.codeSystem, JOB.code), status: 'requested,in-progress', _count: '1000' },
    NO_CACHE
  )) {
    tasks.push(...page);
  }
  return tasks;
}

export function taskInput(task: Task, name: string): string | undefined {
  return task.input?.find((i) => i.type.text === name)?.valueString;
}

export function taskTable(task: Task): string | undefined {
  return taskInput(task, JOB.inputs.table);
}

export function uploadKey(task: Task): string | undefined {
  return task.identifier?.find((i) => i.system === JOB.uploadIdentifierSystem)?.value;
}

function extension(task: Task, url: string): Extension | undefined {
  return task.extension?.find((e) => e.url === url);
}

/** Where an upload's import stands between runs. */
export interface JobCheckpoint {
  /** First pass over the file: rows up to here are done... */
  resumeAfterRow: number;
  /** ...and these beyond it. */
  doneRows: Set<number>;
  /** A retry pass over rows that waited for their parents: the rows still to do (undefined: first pass). */
  retryRows?: Set<number>;
  /** Rows that failed only for a missing parent, waiting to be retried. */
  deferredRows: Set<number>;
  /** When rows were last deferred (ms since epoch). */
  deferredAt?: number;
}

export function checkpointOf(task: Task): JobCheckpoint {
  const retry = extension(task, JOB.extensions.retryRows)?.valueString;
  const deferredAt = extension(task, JOB.extensions.deferredAt)?.valueDateTime;
  return {
    resumeAfterRow: extension(task, JOB.extensions.resumeAfterRow)?.valueInteger ?? 0,
    doneRows: decodeRows(extension(task, JOB.extensions.doneRows)?.valueString),
    retryRows: retry === undefined ? undefined : decodeRows(retry),
    deferredRows: decodeRows(extension(task, JOB.extensions.deferredRows)?.valueString),
    deferredAt: deferredAt ? Date.parse(deferredAt) : undefined,
  };
}

export function taskReport(task: Task): ImportReport | undefined {
  const text = task.output?.find((o) => o.type.text === JOB.outputs.report)?.valueString;
  return text ? (JSON.parse(text) as ImportReport) : undefined;
}

export function outputAttachments(task: Task, name: string): Attachment[] {
  return (task.output ?? []).filter((o) => o.type.text === name && o.valueAttachment).map((o) => o.valueAttachment as Attachment);
}

export function isFinished(task: Task): boolean {
  return task.status === 'completed' || task.status === 'failed' || task.status === 'cancelled';
}

/** The end of the claim on a Task (ms since epoch), 0 when nobody holds it. */
export function leaseEnd(task: Task): number {
  const until = extension(task, JOB.extensions.leaseUntil)?.valueDateTime;
  return until ? Date.parse(until) : 0;
}

/** A Task nobody holds: queued, waiting, or in progress with a claim that ran out (its run died). */
export function isClaimable(task: Task, now: number): boolean {
  if (task.status === 'requested') {
    return leaseEnd(task) <= now;
  }
  return task.status === 'in-progress' && leaseEnd(task) <= now;
}

export interface TaskChange {
  status?: Task['status'];
  businessStatus?: string;
  statusReason?: string;
  /** Claim end (ms since epoch); 0 releases the claim. */
  leaseUntil?: number;
  checkpoint?: JobCheckpoint;
  table?: string;
  report?: ImportReport;
  /** Adds a part of the rejected rows written since the last save. */
  rejectedRowsPart?: Attachment;
  /** Replaces every part with these (parts merged into one). */
  rejectedRowsParts?: Attachment[];
  /** The rejected-rows file(s) of the finished import: replace the parts. */
  rejectedRows?: Attachment[];
  error?: string;
}

/** True when instant `a` is after (or at) instant `b`; unparsable times lose. */
function later(a: string, b: string): boolean {
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  return Number.isNaN(tb) || (!Number.isNaN(ta) && ta >= tb);
}

function withExtension(extensions: Extension[] | undefined, url: string, value: Extension | undefined): Extension[] | undefined {
  const others = (extensions ?? []).filter((e) => e.url !== url);
  const all = value ? [...others, value] : others;
  return all.length ? all : undefined;
}

/**
 * The report as a Task holds it: counts exact, lists cut to TASK_REPORT_LIMIT (the rejected-rows
 * file has every failed row), so that a Task stays far below the server's 1 MB body limit.
 */
export function reportForTask(report: ImportReport): ImportReport {
  return withListsCapped(report, TASK_REPORT_LIMIT);
}

/** Applies a change to a Task, as a new resource. */
export function changedTask(task: Task, change: TaskChange): Task {
  // Never before the Task's own times (Task inv-1), whatever the clocks of earlier writers said.
  const now = new Date().toISOString();
  const lastModified = [now, task.authoredOn ?? '', task.lastModified ?? ''].reduce((a, b) => (later(a, b) ? a : b));
  const next: Task = { ...task, lastModified };
  if (change.status) {
    next.status = change.status;
    if (change.status === 'in-progress' && !task.executionPeriod?.start) {
      next.executionPeriod = { start: next.lastModified };
    }
    if (change.status === 'completed' || change.status === 'failed' || change.status === 'cancelled') {
      next.executionPeriod = { ...next.executionPeriod, end: next.lastModified };
    }
  }
  if (change.businessStatus !== undefined) {
    next.businessStatus = { text: change.businessStatus };
  }
  if (change.statusReason !== undefined) {
    next.statusReason = { text: change.statusReason };
  }
  let extensions = next.extension;
  if (change.leaseUntil !== undefined) {
    const url = JOB.extensions.leaseUntil;
    extensions = withExtension(extensions, url, change.leaseUntil > 0 ? { url, valueDateTime: new Date(change.leaseUntil).toISOString() } : undefined);
  }
  if (change.checkpoint) {
    const { resumeAfterRow, doneRows, retryRows, deferredRows, deferredAt } = change.checkpoint;
    const ext = JOB.extensions;
    const rows = (url: string, set: Set<number> | undefined): Extension | undefined =>
      set && (set.size || url === ext.retryRows) ? { url, valueString: encodeRows(set) } : undefined;
    extensions = withExtension(extensions, ext.resumeAfterRow, { url: ext.resumeAfterRow, valueInteger: resumeAfterRow });
    extensions = withExtension(extensions, ext.doneRows, rows(ext.doneRows, doneRows));
    extensions = withExtension(extensions, ext.retryRows, rows(ext.retryRows, retryRows));
    extensions = withExtension(extensions, ext.deferredRows, rows(ext.deferredRows, deferredRows));
    extensions = withExtension(
      extensions,
      ext.deferredAt,
      deferredAt ? { url: ext.deferredAt, valueDateTime: new Date(deferredAt).toISOString() } : undefined
    );
  }
  next.extension = extensions;
  if (change.table && taskTable(next) !== change.table) {
    next.input = [
      ...(next.input ?? []).filter((i) => i.type.text !== JOB.inputs.table),
      { type: { text: JOB.inputs.table }, valueString: change.table },
    ];
  }
  const { outputs: names } = JOB;
  const outputs: TaskOutput[] = (next.output ?? []).filter(
    (o) =>
      !(change.report && o.type.text === names.report) &&
      !(change.rejectedRows && (o.type.text === names.rejectedRows || o.type.text === names.rejectedRowsPart)) &&
      !(change.rejectedRowsParts && o.type.text === names.rejectedRowsPart) &&
      !(change.error && o.type.text === names.error)
  );
  if (change.report) {
    outputs.push({ type: { text: names.report }, valueString: JSON.stringify(reportForTask(change.report)) });
  }
  for (const part of [...(change.rejectedRowsParts ?? []), ...(change.rejectedRowsPart ? [change.rejectedRowsPart] : [])]) {
    outputs.push({ type: { text: names.rejectedRowsPart }, valueAttachment: part });
  }
  for (const file of change.rejectedRows ?? []) {
    outputs.push({ type: { text: names.rejectedRows }, valueAttachment: file });
  }
  if (change.error) {
    outputs.push({ type: { text: names.error }, valueString: change.error });
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
 * Writes a Task change only if nobody changed the Task since this invocation read it (If-Match on
 * its version): a claim cannot be won twice, and a lost claim is noticed. Only a 412 means the
 * claim was lost; other failures are thrown as they are, for the caller's retries.
 */
export async function updateTaskIfUnchanged(medplum: MedplumClient, task: Task, change: TaskChange): Promise<Task> {
  return putTaskIfVersion(medplum, task.meta?.versionId, changedTask(task, change), `Task/${task.id}`);
}

/** Writes a Task prepared by changedTask if the stored one still has `versionId`. */
export async function putTaskIfVersion(
  medplum: MedplumClient,
  versionId: string | undefined,
  next: Task,
  reference: string
): Promise<Task> {
  try {
    return await medplum.updateResource(next, {
      ...NO_CACHE,
      headers: versionId ? { 'If-Match': `W/"${versionId}"` } : undefined,
    });
  } catch (err) {
    if (statusOf(err) === 412) {
      throw new LostClaimError(reference);
    }
    throw err;
  }
}

/** The invocation holding a Task's claim. */
export function claimHolder(task: Task): string | undefined {
  return extension(task, JOB.extensions.run)?.valueString;
}

export function withClaimHolder(task: Task, runId: string): Task {
  return { ...task, extension: withExtension(task.extension, JOB.extensions.run, { url: JOB.extensions.run, valueString: runId }) };
}

/**
 * A CSV a Task's output points at (rejected rows, a plan's rows), saved as a Binary: not a
 * DocumentReference, which would be imported as an upload. `final`: made even at the deadline,
 * with the run's last save.
 */
export async function saveCsvAttachment(medplum: MedplumClient, retrier: Retrier, title: string, text: string, final = false): Promise<Attachment> {
  const binary = await retrier.run(
    `saving ${title}`,
    () => medplum.createBinary({ data: text, contentType: 'text/csv', filename: title }, { maxRetries: 0 }),
    { final }
  );
  return { contentType: 'text/csv', url: `Binary/${binary.id}`, title };
}
