import { normalizeErrorString } from '@medplum/core';
import Papa from 'papaparse';
import type { Attachment, Task } from '@medplum/fhirtypes';
import type { CsvDocument } from '../csv/document';
import type { Checkpoint } from '../engine/import-csv';
import { importCsv } from '../engine/import-csv';
import type { FileShape } from '../engine/inspect';
import { inspectCsv } from '../engine/inspect';
import { DependencyNotReadyError, ImportFileError } from '../errors';
import { OutOfTimeError } from '../execute/quota';
import { DownloadError, downloadBinary, downloadCsv } from '../input/download';
import type { ImportReport, RowResult } from '../report';
import { mergeReports, ReportBuilder } from '../report';
import type { TableDefinition } from '../tables/types';
import type { JobContext } from './context';
import { leaseUntil } from './context';
import type { PendingLedger } from './pending-ledger';
import { rejectedRowsCsv } from './rejected-rows';
import type { JobCheckpoint, TaskChange, Upload } from './task-ledger';
import {
  changedTask,
  checkpointOf,
  claimHolder,
  JOB,
  LostClaimError,
  outputAttachments,
  putTaskIfVersion,
  saveCsvAttachment,
  taskReport,
  taskTable,
  withClaimHolder,
} from './task-ledger';

/** Parts of the rejected-rows file beyond which a running import merges them. */
const MAX_REJECTED_PARTS = 8;

/** The least time a part download is expected to take, before any was measured. */
const MIN_MERGE_STEP_MS = 250;

/** The Task's business status while only the merge of its rejected-rows parts is left. */
const MERGE_PENDING = 'every row is imported; the rejected-rows file is merged by the next run';

/** What happened to one upload in this invocation. */
export interface UploadJobResult {
  task: string;
  file: string;
  table?: string;
  /**
   * completed / failed / cancelled: final. paused: the time budget ran out; the next run resumes.
   * waiting: parent tables (or rows' parents) not imported yet. busy: another invocation has it.
   * interrupted: the server kept failing; the next run resumes.
   */
  outcome: 'completed' | 'failed' | 'cancelled' | 'paused' | 'waiting' | 'busy' | 'already-done' | 'interrupted';
  message?: string;
  report?: ImportReport;
}

/**
 * A Task this invocation has claimed. Every change goes through `save`: version-checked, retried
 * within the deadline, and recognised as its own when an answer was lost and the retry then saw
 * the new version (412 with this run's id and the change's time on the stored Task).
 */
class ClaimedTask {
  private constructor(
    private readonly context: JobContext,
    public current: Task
  ) {}

  static async claim(context: JobContext, task: Task): Promise<ClaimedTask> {
    const claimed = new ClaimedTask(context, withClaimHolder(task, context.runId));
    // The stored version is the one read: If-Match on it wins the claim at most once.
    claimed.current = { ...claimed.current, meta: task.meta };
    await claimed.save({ status: 'in-progress', businessStatus: 'importing', leaseUntil: leaseUntil(context) });
    return claimed;
  }

  get reference(): string {
    return `Task/${this.current.id}`;
  }

  /** `final`: the save that records where a stopping run left off, made even at the deadline. */
  async save(change: TaskChange, final = false): Promise<void> {
    const { medplum, retrier } = this.context;
    const next = changedTask(this.current, change);
    const versionId = this.current.meta?.versionId;
    try {
      this.current = await retrier.run(`saving ${this.reference}`, () => putTaskIfVersion(medplum, versionId, next, this.reference), {
        final,
      });
    } catch (err) {
      if (!(err instanceof LostClaimError)) {
        throw err;
      }
      const stored = await retrier.run(
        `reading ${this.reference}`,
        () => medplum.readResource('Task', this.current.id as string, { cache: 'no-cache', maxRetries: 0 }),
        { final }
      );
      if (claimHolder(stored) !== this.context.runId || stored.lastModified !== next.lastModified) {
        throw err;
      }
      this.current = stored; // an earlier attempt landed; its answer was lost
    }
  }

  /** Saves a last change; when even that fails (false) the claim runs out by itself. */
  async release(change: TaskChange): Promise<boolean> {
    try {
      await this.save({ ...change, leaseUntil: 0 }, true);
      return true;
    } catch (err) {
      this.context.log(`${this.reference}: could not save (${normalizeErrorString(err)}); its claim runs out by itself`);
      return false;
    }
  }
}

/**
 * Imports one upload under its Task: claims it, downloads and checks the file, waits for parent
 * tables, imports from its checkpoint until done or out of time (saving progress after every
 * batch), and records the outcome, the report and the rejected rows in the Task. Whatever goes
 * wrong after the claim ends in a Task state with the reason.
 */
export async function runUploadJob(
  context: JobContext,
  task: Task,
  upload: Upload,
  ledger: PendingLedger
): Promise<UploadJobResult> {
  const base = { task: `Task/${task.id}`, file: upload.fileName };
  let claimed: ClaimedTask;
  try {
    claimed = await ClaimedTask.claim(context, task);
  } catch (err) {
    if (err instanceof LostClaimError) {
      return { ...base, outcome: 'busy', message: 'another invocation claimed this upload first' };
    }
    if (err instanceof OutOfTimeError) {
      return { ...base, outcome: 'paused', message: err.message };
    }
    // The claim itself was refused or kept failing: the Task stays as it was, for a later run.
    return { ...base, outcome: 'interrupted', message: `could not claim the upload: ${normalizeErrorString(err)}` };
  }

  let table: TableDefinition | undefined;
  try {
    if (claimed.current.businessStatus?.text === MERGE_PENDING) {
      return await finishMerge(context, claimed, upload);
    }
    if (upload.refusal || !upload.binaryId) {
      throw new DownloadError('not-from-this-server', upload.refusal ?? 'the upload has no file');
    }
    const doc = await downloadCsv(context.link, context.trusted, upload.binaryId, upload.fileName, {
      retrier: context.retrier,
    });
    const shape = await inspectCsv(doc, context.tables, taskTable(claimed.current));
    table = shape.table;
    const parents = ledger.blockingParents(table, claimed.current);
    if (parents.length) {
      const message = `waiting for ${parents.join(', ')} to be imported first`;
      await claimed.release({ status: 'requested', businessStatus: message, table: table.name });
      return { ...base, table: table.name, outcome: 'waiting', message };
    }
    return await new FileJob(context, claimed, upload, doc, shape, ledger).run();
  } catch (err) {
    return recordFailure(context, claimed, base, table?.name, err);
  }
}

async function recordFailure(
  context: JobContext,
  claimed: ClaimedTask,
  base: { task: string; file: string },
  table: string | undefined,
  err: unknown
): Promise<UploadJobResult> {
  const message = normalizeErrorString(err);
  const result = { ...base, table, message };
  if (err instanceof LostClaimError) {
    return { ...result, outcome: 'busy' };
  }
  if (err instanceof OutOfTimeError) {
    await claimed.release({ businessStatus: `paused: ${message}; resumes on the next run`, table });
    return { ...result, outcome: 'paused' };
  }
  if (err instanceof DependencyNotReadyError) {
    await claimed.release({ status: 'requested', businessStatus: `waiting: ${err.problem}`, table });
    return { ...result, outcome: 'waiting' };
  }
  if (err instanceof ImportFileError || err instanceof DownloadError) {
    // The problem is the file (or where it is): nothing was written; a new upload is needed.
    const reason = err instanceof DownloadError ? `${base.file}: ${message}` : message;
    await claimed.release({ status: 'failed', businessStatus: 'not imported', statusReason: reason, error: reason, table });
    return { ...result, message: reason, outcome: 'failed' };
  }
  // The server or network gave out beyond the retries: keep the checkpoint, try again later.
  context.log(`${base.task}: interrupted: ${message}`);
  await claimed.release({ businessStatus: `interrupted: ${message}; resumes on the next run`, table });
  return { ...result, outcome: 'interrupted' };
}

/**
 * The import passes over one downloaded, checked file, from the Task's checkpoint: the first pass
 * reads every row; rows that failed only because a resource they reference was missing then get
 * retry passes, while that resource may still come, and a last one after that.
 */
class FileJob {
  /** The Task's checkpoint when the current importCsv call started; its progress builds on it. */
  private passStart: JobCheckpoint;
  /** The report when the current importCsv call started. */
  private reportAtStart: ImportReport | undefined;
  /** The latest report saved. */
  private report: ImportReport | undefined;
  /** Failed rows not yet saved as a rejected-rows part. */
  private rejected: RowResult[] = [];
  private readonly parts: RejectedParts;

  constructor(
    private readonly context: JobContext,
    private readonly claimed: ClaimedTask,
    private readonly upload: Upload,
    private readonly doc: CsvDocument,
    private readonly shape: FileShape,
    private readonly ledger: PendingLedger
  ) {
    this.parts = new RejectedParts(context, upload.fileName);
    this.passStart = checkpointOf(claimed.current);
    this.reportAtStart = taskReport(claimed.current);
    this.report = this.reportAtStart;
  }

  private result(outcome: UploadJobResult['outcome'], message?: string): UploadJobResult {
    return {
      task: this.claimed.reference,
      file: this.upload.fileName,
      table: this.shape.table.name,
      outcome,
      ...(message ? { message } : {}),
      ...(this.report ? { report: this.report } : {}),
    };
  }

  async run(): Promise<UploadJobResult> {
    for (;;) {
      const retryRows = this.passStart.retryRows;
      const mayWait = await this.parentsMayStillCome();
      const outcome = await importCsv(this.context.medplum, this.doc, {
        settings: this.context.settings,
        shape: this.shape,
        tables: this.context.tables,
        startAfterRow: retryRows ? 0 : this.passStart.resumeAfterRow,
        skipRows: retryRows ? undefined : this.passStart.doneRows,
        onlyRows: retryRows,
        deferMissingParents: mayWait,
        deadline: this.context.workDeadline,
        keepFailedFields: true,
        executor: this.context.executor,
        log: (line) => this.context.log(`${this.upload.fileName}: ${line}`),
        onRowResult: (r) => {
          if (r.state === 'failed') {
            this.rejected.push(r);
          }
        },
        onCheckpoint: (c) => this.saveProgress(c),
      });
      if (outcome.stoppedAt) {
        const done = this.merged(outcome.stoppedAt.report).rows;
        const message = `paused after row ${outcome.stoppedAt.resumeAfterRow} (${done} of ${this.shape.dataRows} rows done); resumes on the next run`;
        await this.saveProgress(outcome.stoppedAt, { businessStatus: message, leaseUntil: 0 });
        return this.result('paused', message);
      }
      this.report = this.merged(outcome.report);
      const waiting = new Set([...this.passStart.deferredRows, ...outcome.deferred]);
      if (waiting.size === 0) {
        return this.complete(outcome.report.rows > 0);
      }
      // Some rows wait for their parents: the next pass retries them, later or (the wait over) now.
      this.passStart = { resumeAfterRow: 0, doneRows: new Set(), retryRows: waiting, deferredRows: new Set(), deferredAt: this.context.clock.now() };
      this.reportAtStart = this.report;
      if (mayWait) {
        const message = await this.waitingMessage(waiting.size);
        await this.saveWithRejectedRows(
          { status: 'requested', businessStatus: message, table: this.shape.table.name, checkpoint: this.passStart, report: this.report },
          true
        );
        return this.result('waiting', message);
      }
    }
  }

  private merged(runReport: ImportReport): ImportReport {
    return this.reportAtStart ? mergeReports(this.reportAtStart, runReport) : runReport;
  }

  /**
   * After every batch: where the pass stands, saved in the Task before going on. At a stop
   * (`stopping`: the last change, releasing the claim) the same save is the run's last.
   */
  private async saveProgress(c: Checkpoint, stopping?: TaskChange): Promise<void> {
    const start = this.passStart;
    const doneBeyond = new Set(c.doneBeyond);
    const deferredRows = new Set([...start.deferredRows, ...c.deferred]);
    const checkpoint: JobCheckpoint = start.retryRows
      ? { ...start, retryRows: new Set([...start.retryRows].filter((row) => row > c.resumeAfterRow && !doneBeyond.has(row))), deferredRows }
      : { ...start, resumeAfterRow: c.resumeAfterRow, doneRows: doneBeyond, deferredRows };
    const report = this.merged(c.report);
    const done = report.rows + deferredRows.size;
    const change: TaskChange = {
      checkpoint,
      report,
      table: this.shape.table.name,
      ...(stopping ?? { businessStatus: `importing: ${done} of ${this.shape.dataRows} rows`, leaseUntil: leaseUntil(this.context) }),
    };
    await this.saveWithRejectedRows(change, Boolean(stopping));
    this.report = report;
  }

  /**
   * Saves a change with the failed rows gathered since the last save, as a new part of the
   * rejected-rows file; they are forgotten only once the save holding them succeeded (else the
   * next save, or the run that resumes from the last checkpoint, records them).
   * `last`: the run's final save, which releases the claim and is made even at the deadline.
   */
  private async saveWithRejectedRows(change: TaskChange, last: boolean): Promise<void> {
    const count = this.rejected.length;
    const parts = outputAttachments(this.claimed.current, JOB.outputs.rejectedRowsPart).length;
    const part = count
      ? await this.parts.create(rejectedRowsCsv(this.shape.header, this.rejected.slice(0, count)), `part-${parts + 1}`, last)
      : undefined;
    const withPart = { ...change, ...(part ? { rejectedRowsPart: part } : {}) };
    if (last ? await this.claimed.release(withPart) : (await this.claimed.save(withPart), true)) {
      this.rejected.splice(0, count);
    }
    if (part && !last) {
      await this.consolidateParts();
    }
  }

  /** `busy`: this run imported rows; a run that only finishes up can spend its whole budget merging. */
  private async complete(busy: boolean): Promise<UploadJobResult> {
    const { resumeAfterRow: _resumed, ...report } = this.report ?? emptyReport(this.shape, this.doc.name);
    const before = outputAttachments(this.claimed.current, JOB.outputs.rejectedRowsPart).length + (this.rejected.length ? 1 : 0);
    const rejectedRows = await this.finalRejectedRows();
    // Not one file yet: the next run goes on merging, first thing, unless this run could not merge
    // anything though it did nothing else (then the parts are listed as they are).
    if (rejectedRows.length > 1 && (busy || rejectedRows.length < before)) {
      await this.claimed.release({ businessStatus: MERGE_PENDING, rejectedRowsParts: rejectedRows, report: this.report });
      return this.result('paused', MERGE_PENDING);
    }
    await this.claimed.release(completion(this.shape.table.name, report, rejectedRows));
    this.report = report;
    return this.result('completed');
  }

  /**
   * Whether rows that reference a missing resource should wait for it: while a parent table has
   * an upload pending, or within PARENT_WAIT_MINUTES of this upload or of the last parent upload
   * that finished.
   */
  private async parentsMayStillCome(): Promise<boolean> {
    const parents = this.ledger.parentTables(this.shape.table);
    if (parents.length === 0) {
      return false;
    }
    if (this.ledger.blockingParents(this.shape.table, this.claimed.current).length) {
      return true;
    }
    const since = Date.parse(this.claimed.current.authoredOn ?? '') || 0;
    const lastParent = await this.ledger.lastFinished(this.context, parents, since - this.context.parentWaitMs);
    return this.context.clock.now() < Math.max(since, lastParent ?? 0) + this.context.parentWaitMs;
  }

  private async waitingMessage(rows: number): Promise<string> {
    const types = Object.keys(this.shape.table.references ?? {}).join(', ');
    const since = Date.parse(this.claimed.current.authoredOn ?? '') || this.context.clock.now();
    const until = new Date(since + this.context.parentWaitMs).toISOString().slice(0, 16).replace('T', ' ');
    return `waiting: ${rows} rows reference ${types || 'resources'} not in Medplum yet; they are retried when uploads of ${this.ledger.parentTables(this.shape.table).join(', ')} finish, and at the latest after ${until} UTC`;
  }

  /**
   * The rejected-rows file of the finished import: the parts merged into one (each part is a
   * complete CSV, with the header). When the time left does not allow reading them all, the parts
   * are listed as they are rather than holding the import open.
   */
  private async finalRejectedRows(): Promise<Attachment[]> {
    const saved = outputAttachments(this.claimed.current, JOB.outputs.rejectedRowsPart);
    const last = this.rejected.length
      ? await this.parts.create(rejectedRowsCsv(this.shape.header, this.rejected), `part-${saved.length + 1}`, true)
      : undefined;
    this.rejected = [];
    const parts = [...saved, ...(last ? [last] : [])];
    if (parts.length === 1) {
      return [{ ...parts[0], title: this.parts.title() }];
    }
    const merged = await this.parts.merge(parts);
    return merged.length === 1 ? [{ ...merged[0], title: this.parts.title() }] : merged;
  }

  /** Keeps the number of parts small while a long import runs: merges them once there are many. */
  private async consolidateParts(): Promise<void> {
    const parts = outputAttachments(this.claimed.current, JOB.outputs.rejectedRowsPart);
    if (parts.length < MAX_REJECTED_PARTS) {
      return;
    }
    const merged = await this.parts.merge(parts);
    if (merged.length < parts.length) {
      await this.claimed.save({ rejectedRowsParts: merged });
    }
  }
}

/** The Task change that completes an import. */
function completion(table: string, report: ImportReport, rejectedRows: Attachment[]): TaskChange {
  return {
    status: 'completed',
    table,
    businessStatus: `${report.rows} rows: ${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged, ${report.conflict ? `${report.conflict} in conflict, ` : ''}${report.failed} failed, ${report.skipped} skipped`,
    checkpoint: { resumeAfterRow: 0, doneRows: new Set(), deferredRows: new Set() },
    report,
    ...(rejectedRows.length ? { rejectedRows } : {}),
  };
}

/**
 * A run whose rows were all imported but whose rejected-rows parts were not merged in time: only
 * the merge is left, so the file is not read again. Parts still left after this run wait for the
 * next, unless this run could merge none (then they are listed as they are).
 */
async function finishMerge(context: JobContext, claimed: ClaimedTask, upload: Upload): Promise<UploadJobResult> {
  const table = taskTable(claimed.current) ?? '';
  const report = taskReport(claimed.current);
  const base = { task: claimed.reference, file: upload.fileName, table, ...(report ? { report } : {}) };
  const rejected = new RejectedParts(context, upload.fileName);
  const parts = outputAttachments(claimed.current, JOB.outputs.rejectedRowsPart);
  const merged = parts.length > 1 ? await rejected.merge(parts) : parts;
  if (merged.length > 1 && merged.length < parts.length) {
    await claimed.release({ businessStatus: MERGE_PENDING, rejectedRowsParts: merged });
    return { ...base, outcome: 'paused', message: MERGE_PENDING };
  }
  const files = merged.length === 1 ? [{ ...merged[0], title: rejected.title() }] : merged;
  await claimed.release(completion(table, report ?? new ReportBuilder(table, upload.fileName).build(), files));
  return { ...base, outcome: 'completed' };
}

/**
 * The rejected-rows file of an upload, saved in parts while the import runs (each part a complete
 * CSV, with its header) and merged into one.
 */
class RejectedParts {
  constructor(
    private readonly context: JobContext,
    private readonly fileName: string
  ) {}

  title(part?: string): string {
    return `rejected-rows-${this.fileName.replace(/\.csv$/i, '')}${part ? `-${part}` : ''}.csv`;
  }

  /** A rejected-rows file (or part) as a Binary; `final`: made even at the deadline, with the run's last save. */
  create(text: string, part?: string, final = false): Promise<Attachment> {
    return saveCsvAttachment(this.context.medplum, this.context.retrier, this.title(part), text, final);
  }

  /**
   * Merges parts, in order, into one file, as far as the time left allows: the merged file
   * followed by the parts not reached (the same parts when none could be read).
   */
  async merge(parts: readonly Attachment[]): Promise<Attachment[]> {
    const { clock, link } = this.context;
    let text = '';
    let merged = 0;
    // What one download may take: the slowest answer of this run so far, then the slowest download.
    let step = Math.max(MIN_MERGE_STEP_MS, link.longestRequestMs);
    for (const part of parts) {
      const binaryId = /^Binary\/([^/]+)$/.exec(part.url ?? '')?.[1];
      // Room for this download and the merged file's creation.
      if (!binaryId || clock.now() + 2 * step > this.context.workDeadline()) {
        this.context.log(`${this.fileName}: rejected-rows parts: ${merged} of ${parts.length} merged, ${this.context.workDeadline() - clock.now()} ms left`);
        break;
      }
      const started = clock.now();
      const bytes = await downloadBinary(link, this.context.trusted, binaryId, part.title ?? 'rejected rows', {
        retrier: this.context.retrier,
      });
      step = Math.max(step, clock.now() - started);
      const partText = new TextDecoder().decode(bytes);
      text += text ? withoutHeader(partText) : partText;
      merged++;
    }
    if (merged < 2) {
      return [...parts];
    }
    const file = await this.create(text, `part-1-${merged}`, true);
    return [file, ...parts.slice(merged)];
  }
}

/** A rejected-rows CSV without its header record (which may span lines, if a column name does). */
function withoutHeader(csv: string): string {
  const cursor = Papa.parse<string[]>(csv, { preview: 1 }).meta.cursor;
  return csv.slice(cursor).replace(/^\r?\n/, '');
}

/** The report of a file whose every row was already accounted for (nothing left to import). */
function emptyReport(shape: FileShape, file: string): ImportReport {
  const report = new ReportBuilder(shape.table.name, file);
  shape.warnings.forEach((w) => report.warn(w));
  return report.build();
}
