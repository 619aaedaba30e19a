import type { Task } from '@medplum/fhirtypes';
import { tokenParam } from '../fhir/search-values';
import { findTable } from '../tables';
import type { TableDefinition } from '../tables/types';
import type { JobContext } from './context';
import { isFinished, JOB, taskTable } from './task-ledger';

/**
 * The import Tasks still to finish, as one invocation sees them: which tables have uploads
 * pending, so that a child table waits for its parents instead of failing its rows.
 */
export class PendingLedger {
  private tasks: Task[];

  constructor(
    tasks: readonly Task[],
    private readonly tables: readonly TableDefinition[]
  ) {
    this.tasks = tasks.filter((t) => !isFinished(t));
  }

  get pending(): readonly Task[] {
    return this.tasks;
  }

  /** Every table the given one depends on, directly or through others. */
  parentTables(table: TableDefinition): string[] {
    const found: string[] = [];
    const visit = (name: string): void => {
      for (const parent of findTable(name, this.tables)?.dependsOn ?? []) {
        if (!found.includes(parent)) {
          found.push(parent);
          visit(parent);
        }
      }
    };
    visit(table.name);
    return found;
  }

  /** Parent tables of `table` with an upload still to finish (other than `self`). */
  blockingParents(table: TableDefinition, self: Task): string[] {
    const unfinished = new Set(this.tasks.filter((t) => t.id !== self.id).map(taskTable).filter(Boolean) as string[]);
    return this.parentTables(table).filter((parent) => unfinished.has(parent));
  }

  /** Later decisions in the same invocation see this Task as finished (or pending again). */
  update(task: Task): void {
    this.tasks = this.tasks.filter((t) => t.id !== task.id);
    if (!isFinished(task)) {
      this.tasks.push(task);
    }
  }

  /** When the last upload of one of these tables finished, if one finished after `since`. */
  async lastFinished(context: JobContext, tables: readonly string[], since: number): Promise<number | undefined> {
    const finished = await context.retrier.run('reading finished imports', () =>
      context.medplum.searchResources(
        'Task',
        {
          code: tokenParam(JOB.codeSystem, JOB.code),
          status: 'completed,failed',
          _lastUpdated: `ge${new Date(Math.max(0, since)).toISOString()}`,
          _count: '1000',
        },
        { cache: 'no-cache', maxRetries: 0 }
      )
    );
    let last: number | undefined;
    for (const task of finished) {
      const end = Date.parse(task.executionPeriod?.end ?? '');
      if (tables.includes(taskTable(task) ?? '') && Number.isFinite(end)) {
        last = Math.max(last ?? 0, end);
      }
    }
    return last;
  }
}
