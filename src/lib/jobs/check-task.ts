import { getReferenceString, normalizeErrorString } from '@medplum/core';
import type { Task, TaskOutput } from '@medplum/fhirtypes';
import type { CsvSource } from '../input/event';
import type { PlanRow } from '../plan/plan-rows';
import { planRowsCsvHeader, planRowsCsvLines } from '../plan/plan-rows';
import type { ReconcileReport } from '../reconcile';
import type { ImportReport } from '../report';
import type { JobContext } from './context';
import { JOB, reportForTask, saveCsvAttachment } from './task-ledger';

/**
 * The runs that write no resource ($execute with `plan: true` or `reconcile: true`) still leave a
 * Task, so what they found can be read in the Medplum app: a plan's report and its per-row actions
 * (a CSV attachment), or a reconciliation's lists. Their codes differ from the import Task's, so
 * the import's bookkeeping never takes them for uploads.
 */
export const CHECK_TASKS = {
  plan: { code: 'csv-import-plan', display: 'CSV import plan', outputs: { report: 'report', planRows: 'plan-rows' } },
  reconcile: { code: 'csv-import-reconcile', display: 'CSV import reconciliation', outputs: { reconciliation: 'reconciliation' } },
} as const;

type CheckKind = keyof typeof CHECK_TASKS;

/** Records a plan as a completed Task: its report, and every row's action and changed element paths as CSV. */
export async function recordPlanTask(context: JobContext, source: CsvSource, report: ImportReport, rows: readonly PlanRow[]): Promise<string | undefined> {
  const names = CHECK_TASKS.plan.outputs;
  return recordCheckTask(context, 'plan', source, summarizePlan(report), async () => {
    const text = planRowsCsvHeader() + planRowsCsvLines(rows);
    const attachment = await saveCsvAttachment(context.medplum, context.retrier, `${source.name} plan rows.csv`, text);
    return [
      { type: { text: names.report }, valueString: JSON.stringify(reportForTask(report)) },
      { type: { text: names.planRows }, valueAttachment: attachment },
    ];
  });
}

/** Records a reconciliation as a completed Task holding its lists (already capped in length). */
export async function recordReconcileTask(context: JobContext, source: CsvSource, reconciliation: ReconcileReport): Promise<string | undefined> {
  const r = reconciliation;
  const text = `${r.rows} rows compared: ${r.matched} matched, ${r.missing} missing in Medplum, ${r.extra} extra, ${r.duplicates} duplicated, ${r.unresolved} unresolved references`;
  return recordCheckTask(context, 'reconcile', source, text, async () => [
    { type: { text: CHECK_TASKS.reconcile.outputs.reconciliation }, valueString: JSON.stringify(reconciliation) },
  ]);
}

/**
 * Creates the Task; its reference, or undefined when it could not be saved in time (the answer
 * of the call still carries the whole result, so nothing is lost but the record in the app).
 */
async function recordCheckTask(
  context: JobContext,
  kind: CheckKind,
  source: CsvSource,
  summary: string,
  outputs: () => Promise<TaskOutput[]>
): Promise<string | undefined> {
  const { code, display } = CHECK_TASKS[kind];
  const focus = source.kind === 'binary' ? `Binary/${source.binaryId}` : source.kind === 'document' ? source.reference : undefined;
  try {
    const now = new Date().toISOString();
    const task = await context.retrier.run(`saving the ${display} Task`, async () =>
      context.medplum.createResource<Task>(
        {
          resourceType: 'Task',
          status: 'completed',
          intent: 'order',
          code: { coding: [{ system: JOB.codeSystem, code, display }], text: display },
          description: `${display}: ${source.name}`,
          ...(focus ? { focus: { reference: focus, display: source.name } } : {}),
          authoredOn: now,
          lastModified: now,
          businessStatus: { text: summary },
          input: [{ type: { text: JOB.inputs.file }, valueString: source.name }],
          output: await outputs(),
        },
        { maxRetries: 0 }
      )
    );
    return getReferenceString(task);
  } catch (err) {
    context.log(`${source.name}: the ${display} could not be saved as a Task (${normalizeErrorString(err)}); it is in the answer only`);
    return undefined;
  }
}

function summarizePlan(report: ImportReport): string {
  return `${report.rows} rows would be: ${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged, ${report.conflict} in conflict, ${report.failed} failed, ${report.skipped} skipped`;
}
