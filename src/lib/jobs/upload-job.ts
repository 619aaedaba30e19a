import type { MedplumClient } from '@medplum/core';
import { normalizeErrorString } from '@medplum/core';
import type { Attachment, Task } from '@medplum/fhirtypes';
import type { CsvDocument } from '../csv/document';
import type { ImportOptions } from '../engine/import-csv';
import { importCsv } from '../engine/import-csv';
import type { FileShape } from '../engine/inspect';
import { DependencyNotReadyError, ImportFileError } from '../errors';
import type { ImportReport, RowResult } from '../report';
import { mergeReports } from '../report';
import type { ImportSettings } from '../settings';
import { rejectedRowsCsv } from './rejected-rows';
import type { TaskChange } from './task-ledger';
import { LostClaimError, rejectedRowsAttachment, resumeAfterRow, taskReport, updateTaskIfUnchanged } from './task-ledger';

export interface JobOptions {
  settings: ImportSettings;
  /** When this invocation must stop starting new work (ms since epoch). */
  deadline: number;
  /** How long a claim stays ours without renewal; a dead invocation's job is retaken after it. */
  leaseMs: number;
  /** Least time between progress updates of the Task. */
  progressIntervalMs: number;
  log: (line: string) => void;
  executor?: ImportOptions['executor'];
}

/** What happened to one upload in this invocation. */
export interface UploadJobResult {
  task: string;
  file: string;
  table?: string;
  /** completed / failed: final. paused: time budget used, resumes next run. waiting: parents not imported. busy: another invocation has it. */
  outcome: 'completed' | 'failed' | 'paused' | 'waiting' | 'busy' | 'already-done' | 'interrupted';
  message?: string;
  report?: ImportReport;
}

/**
 * Imports one upload under its Task: claims it (version-checked), imports from its checkpoint
 * until done or out of time, and records progress, the report and the rejected rows in the Task.
 */
export async function runUploadJob(
  medplum: MedplumClient,
  task: Task,
  doc: CsvDocument,
  shape: FileShape,
  options: JobOptions
): Promise<UploadJobResult> {
  const result = (outcome: UploadJobResult['outcome'], extra: Partial<UploadJobResult> = {}): UploadJobResult => ({
    task: `Task/${task.id}`,
    file: doc.name,
    table: shape.table.name,
    outcome,
    ...extra,
  });

  let current: Task;
  try {
    current = await updateTaskIfUnchanged(medplum, task, {
      status: 'in-progress',
      businessStatus: 'importing',
      leaseUntil: Date.now() + options.leaseMs,
    });
  } catch (err) {
    if (err instanceof LostClaimError) {
      return result('busy', { message: 'another invocation claimed this upload first' });
    }
    throw err;
  }

  const startAfter = resumeAfterRow(current);
  const before = taskReport(current);
  const rejected: RowResult[] = [];
  let lostClaim = false;
  let lastUpdate = Date.now();
  let updating: Promise<void> = Promise.resolve();
  const save = async (change: TaskChange): Promise<void> => {
    current = await updateTaskIfUnchanged(medplum, current, change);
  };

  try {
    const { report } = await importCsv(medplum, doc, {
      settings: options.settings,
      shape,
      startAfterRow: startAfter,
      deadline: options.deadline,
      shouldStop: () => lostClaim,
      keepFailedFields: true,
      executor: options.executor,
      log: options.log,
      onRowResult: (r) => {
        if (r.state === 'failed') {
          rejected.push(r);
        }
      },
      onProgress: (p) => {
        // Progress and a renewed lease, at most every progressIntervalMs, one update at a time.
        if (Date.now() - lastUpdate < options.progressIntervalMs) {
          return;
        }
        lastUpdate = Date.now();
        const done = (before?.rows ?? 0) + p.rowsDone;
        updating = updating
          .then(() =>
            save({
              businessStatus: `importing: ${done} of ${p.rowsTotal} rows`,
              leaseUntil: Date.now() + options.leaseMs,
            })
          )
          .catch((err) => {
            lostClaim = true;
            options.log(`progress update failed, stopping: ${normalizeErrorString(err)}`);
          });
      },
    });
    await updating;
    if (lostClaim) {
      return result('busy', { message: 'the job was taken over by another invocation; stopped' });
    }

    const total = before ? mergeReports(before, report) : report;
    const rejectedRows = rejected.length
      ? await saveRejectedRows(medplum, current, doc.name, shape.header, rejected, startAfter > 0)
      : undefined;
    if (report.resumeAfterRow !== undefined) {
      await save({
        businessStatus: `paused after row ${report.resumeAfterRow} (${total.rows} of ${shape.dataRows} rows done); resumes on the next run`,
        resumeAfterRow: report.resumeAfterRow,
        leaseUntil: 0,
        report: total,
        rejectedRows,
      });
      return result('paused', { report: total });
    }
    const { resumeAfterRow: _done, ...finalReport } = total;
    await save({
      status: 'completed',
      businessStatus: `${finalReport.rows} rows: ${finalReport.created} created, ${finalReport.updated} updated, ${finalReport.unchanged} unchanged, ${finalReport.failed} failed, ${finalReport.skipped} skipped`,
      leaseUntil: 0,
      report: finalReport,
      rejectedRows,
    });
    return result('completed', { report: finalReport });
  } catch (err) {
    await updating;
    return recordFailure(err);
  }

  async function recordFailure(err: unknown): Promise<UploadJobResult> {
    const message = normalizeErrorString(err);
    if (err instanceof LostClaimError) {
      return result('busy', { message });
    }
    if (err instanceof DependencyNotReadyError) {
      await save({ status: 'requested', businessStatus: `waiting: ${err.problem}`, leaseUntil: 0 });
      return result('waiting', { message });
    }
    if (err instanceof ImportFileError) {
      await save({ status: 'failed', businessStatus: 'not imported', statusReason: message, error: message, leaseUntil: 0 });
      return result('failed', { message });
    }
    // The server or network gave out beyond the retries: keep the checkpoint, try again later.
    await save({ businessStatus: `interrupted: ${message}; resumes on the next run`, leaseUntil: 0 }).catch(() => undefined);
    return result('interrupted', { message });
  }
}

/**
 * Stores the rejected rows as a CSV Binary (not a DocumentReference: that would trigger an
 * import of it). A resumed run appends to the file of the runs before it.
 */
async function saveRejectedRows(
  medplum: MedplumClient,
  task: Task,
  fileName: string,
  header: string[],
  rows: RowResult[],
  append: boolean
): Promise<Attachment> {
  let text = rejectedRowsCsv(header, rows);
  const previous = append ? rejectedRowsAttachment(task) : undefined;
  if (previous?.url) {
    const earlier = await (await medplum.download(previous.url, { cache: 'no-cache' })).text();
    text = earlier + rejectedRowsCsv(header, rows, false);
  }
  const title = `rejected-rows-${fileName.replace(/\.csv$/i, '')}.csv`;
  const binary = await medplum.createBinary({ data: text, contentType: 'text/csv', filename: title });
  return { contentType: 'text/csv', url: `Binary/${binary.id}`, title };
}
