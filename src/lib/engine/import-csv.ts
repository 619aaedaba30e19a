import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { generateId, normalizeErrorString } from '@medplum/core';
import type { PlannedRow } from '../bundles/batch';
import { BatchAssembler, planRow, unitWrites } from '../bundles/batch';
import type { CsvDocument, CsvRecord } from '../csv/document';
import { isBlankRecord } from '../csv/document';
import type { ExecutorOptions, ExecutorStats } from '../execute/executor';
import { BatchExecutor } from '../execute/executor';
import { PlanFirstWriter } from '../plan/writer';
import type { Deadline } from '../execute/clock';
import { OutOfTimeError } from '../execute/quota';
import type { ImportReport, RowResult } from '../report';
import { ReportBuilder } from '../report';
import type { ImportSettings } from '../settings';
import { defaultSettings } from '../settings';
import { defaultTables } from '../tables';
import { isRejectedRowsHeader } from '../csv/rejected-rows-format';
import { writeInChunks } from '../tables/chunked-write';
import { visibleSourceId } from '../tables/identifier-chars';
import type { CellReading, ColumnIndex } from '../tables/row-reader';
import { columnIndex, readCell, RowReader } from '../tables/row-reader';
import type { AggregateItem, AggregateTable, MappingContext, ResourceWrite, TableDefinition, WritingUnit } from '../tables/types';
import type { FileShape } from './inspect';
import { hashA, IdRegistry } from './id-registry';
import { keyText, keyValue } from './row-key';
import { inspectCsv } from './inspect';

export interface ImportProgress {
  file: string;
  table: string;
  rowsDone: number;
  rowsTotal: number;
}

/**
 * Where a file stands after a batch, or where a stopped run left it: every data row up to
 * `resumeAfterRow` is finished, and so are the rows in `doneBeyond` (finished out of order, e.g.
 * while an earlier row's entry waited for a retry). A later run skips both.
 */
export interface Checkpoint {
  resumeAfterRow: number;
  doneBeyond: number[];
  /** Rows of this run that wait for a parent resource (see `deferMissingParents`). */
  deferred: number[];
  /** This run's report so far. */
  report: ImportReport;
}

export interface ImportOptions {
  /** Force a table instead of recognising it from the header. */
  table?: string;
  /** The known tables (default: the four built-in ones). */
  tables?: readonly TableDefinition[];
  settings?: ImportSettings;
  /** Parse, validate and map every row; write nothing. */
  dryRun?: boolean;
  /**
   * Plan mode: also look every row up in Medplum and decide what writing it would do (each
   * RowResult's state, and `changes`: the element paths it would change); write nothing.
   */
  plan?: boolean;
  /** Skip rows up to this spreadsheet row number (resuming a checkpointed import). */
  startAfterRow?: number;
  /** Rows after `startAfterRow` that an earlier run finished: skipped too. */
  skipRows?: ReadonlySet<number>;
  /** Only these rows are imported (a retry of rows that waited for their parents); the rest are read, not written. */
  onlyRows?: ReadonlySet<number>;
  /**
   * Rows that fail only because a resource they reference is not in Medplum are not reported:
   * they are returned in `deferred` for a later retry.
   */
  deferMissingParents?: boolean;
  /** Stop starting new requests at this time (on the executor's clock); the outcome says where to resume. */
  deadline?: Deadline;
  /** Asked before each row; true stops the import like a deadline (e.g. the job's claim was lost). */
  shouldStop?: () => boolean;
  /** Keep each failed row's original fields in its RowResult (for rejected-rows files). */
  keepFailedFields?: boolean;
  onProgress?: (progress: ImportProgress) => void;
  onRowResult?: (result: RowResult) => void;
  /**
   * Given each row's mapped resources before they are planned and written (dry runs too): for
   * showing a user what a mapping makes of their file. They hold cell values: never log them.
   */
  onMapped?: (row: number, resources: readonly Resource[]) => void;
  /** Awaited after every batch written: where the file stands (an upload job saves it in its Task). */
  onCheckpoint?: (checkpoint: Checkpoint) => Promise<void>;
  /** Receives operational log lines: row numbers, counts, source ids; never cell values. */
  log?: (line: string) => void;
  executor?: Partial<ExecutorOptions>;
  now?: () => Date;
  /** The file's structure when the caller already checked it (saves a pass over big files). */
  shape?: FileShape;
}

export interface ImportOutcome {
  report: ImportReport;
  stats: ExecutorStats;
  /** Set when the run stopped before the end of the file (deadline, lost claim). */
  stoppedAt?: Checkpoint;
  /** Rows waiting for a parent resource (only with `deferMissingParents`). */
  deferred: number[];
}

export const DRY_RUN_REASON = 'dry run: valid, not written';

/**
 * Imports one CSV file: structure check (nothing written on failure) -> per row: validate and
 * map -> batches -> execution with retries -> one result per row -> report. Stops, with a
 * checkpoint, when the deadline comes: nothing is sent after it.
 */
export async function importCsv(
  medplum: MedplumClient,
  doc: CsvDocument,
  options: ImportOptions = {}
): Promise<ImportOutcome> {
  const tables = options.tables ?? defaultTables();
  const settings = options.settings ?? defaultSettings();
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);

  const shape = options.shape ?? (await inspectCsv(doc, tables, options.table));
  const table = shape.table;
  const report = new ReportBuilder(table.name, doc.name);
  shape.warnings.forEach((w) => report.warn(w));
  if (options.dryRun) {
    report.set('dryRun', true);
  }
  if (options.plan) {
    report.set('plan', true);
  }

  const executor = new BatchExecutor(medplum, {
    log,
    deadline: options.deadline,
    maxRequestBytes: settings.maxRequestBytes,
    ...options.executor,
  });
  const writer = new PlanFirstWriter(medplum, executor, table, settings.onConflict);
  const progress = new RunProgress(options.startAfterRow ?? 0, options.skipRows);
  const deferred: number[] = [];
  const wouldWrite = new Map<string, number>();
  let rowsDone = 0;

  const finish = (result: RowResult): void => {
    progress.finished(result.row);
    if (options.deferMissingParents && result.state === 'failed' && result.missingParent) {
      deferred.push(result.row);
      return;
    }
    if (!options.keepFailedFields) {
      delete result.fields;
    }
    report.add(result);
    options.onRowResult?.(result);
    rowsDone++;
  };
  const reportProgress = (): void =>
    options.onProgress?.({ file: doc.name, table: table.name, rowsDone, rowsTotal: shape.dataRows });
  const checkpoint = (): Checkpoint => ({ ...progress.checkpoint(), deferred: [...deferred], report: report.build() });

  /** Sends a batch; false when the executor stopped at the deadline. */
  const send = async (rows: PlannedRow[] | undefined): Promise<boolean> => {
    if (!rows?.length) {
      return true;
    }
    if (options.dryRun) {
      for (const row of rows) {
        for (const write of unitWrites(row.unit)) {
          const type = write.resource.resourceType;
          wouldWrite.set(type, (wouldWrite.get(type) ?? 0) + 1);
        }
        finish({ row: row.row, sourceId: row.sourceId, state: 'skipped', reason: DRY_RUN_REASON });
      }
      reportProgress();
      return true;
    }
    const results = options.plan ? await writer.preview(rows) : await writer.write(rows);
    const finished = results.filter((r): r is RowResult => r !== undefined);
    finished.forEach(finish);
    log(`rows ${rows[0].row}-${rows.at(-1)?.row}: ${summarize(finished)}`);
    reportProgress();
    await options.onCheckpoint?.(checkpoint());
    return finished.length === rows.length;
  };

  let stopped = false;
  try {
    const prepare = table.prepare?.bind(table);
    const lookups = prepare
      ? await executor.retrying(`loading lookups for ${table.name}`, () => prepare(medplum, settings, doc.name))
      : undefined;
    const context: MappingContext<unknown> = { settings, lookups, now: now(), newUuid: generateId };
    const rowParser = new RowParser(doc.name, table, shape.header, context, shape.dataRows);
    const assembler = new BatchAssembler(settings.batchSize, settings.maxRequestBytes);
    const aggregateItems: AggregateItem<unknown>[] = [];
    const aggregateFields = new Map<number, string[]>();
    let isHeader = true;

    for await (const record of doc.records()) {
      if (isHeader) {
        isHeader = false;
        continue;
      }
      if (isBlankRecord(record.fields)) {
        continue;
      }
      if (!progress.isToDo(record.row) || (options.onlyRows && !options.onlyRows.has(record.row))) {
        // Rows done by an earlier run (or not part of this retry) still count for duplicate ids.
        rowParser.remember(record);
        continue;
      }
      if (table.kind === 'rows' && (executor.outOfTime() || options.shouldStop?.())) {
        stopped = true;
        break;
      }
      progress.read(record.row);

      const parsed = rowParser.parse(record);
      if ('state' in parsed) {
        finish({ ...parsed, fields: record.fields });
        continue;
      }
      if ('item' in parsed) {
        aggregateItems.push(parsed.item);
        aggregateFields.set(record.row, record.fields);
        progress.opened(record.row);
        continue;
      }
      options.onMapped?.(record.row, unitWrites(parsed.unit).map((w) => w.resource));
      const planned = planRow(record.row, parsed.sourceId, parsed.unit, record.fields);
      if (planned.size > settings.maxRequestBytes) {
        finish(tooLargeToSend(record.row, parsed.sourceId, record.fields, planned.size, settings.maxRequestBytes));
        continue;
      }
      progress.opened(record.row);
      if (!(await send(assembler.add(planned)))) {
        stopped = true;
        break;
      }
    }
    if (!stopped) {
      stopped = !(await send(assembler.flush()));
    }
    if (!stopped && table.kind === 'aggregate') {
      await importAggregate(medplum, table, aggregateItems, aggregateFields, context, executor, writer, {
        dryRun: options.dryRun,
        plan: options.plan,
        finish,
        wouldWrite,
      });
      reportProgress();
    }
  } catch (err) {
    // A read or a wait that the deadline cut short: the run stops where it is, nothing is lost.
    if (!(err instanceof OutOfTimeError)) {
      throw err;
    }
    log(err.message);
    stopped = true;
  }

  const stoppedAt = stopped ? checkpoint() : undefined;
  if (stoppedAt) {
    report.set('resumeAfterRow', stoppedAt.resumeAfterRow);
    log(`stopping: rows up to ${stoppedAt.resumeAfterRow} are done; the next run resumes after it`);
  }
  const built = report.build();
  if (options.dryRun) {
    built.wouldWrite = Object.fromEntries(wouldWrite);
  }
  return { report: built, stats: executor.stats, stoppedAt: stoppedAt && { ...stoppedAt, report: built }, deferred };
}

function tooLargeToSend(row: number, sourceId: string | undefined, fields: string[], size: number, limit: number): RowResult {
  const message = `row too large to send: ${Math.ceil(size / 1024)} KB of JSON, over the ${Math.floor(limit / 1024)} KB request limit`;
  return { row, sourceId, state: 'failed', fields, errors: [{ row, sourceId, message }] };
}

/**
 * Which rows this run has finished, and so where a later run picks up: after the last row before
 * the first one still open (read but not finished), skipping rows finished out of order.
 */
class RunProgress {
  private readonly open = new Set<number>();
  /** Finished rows that may lie beyond the next checkpoint; pruned at each checkpoint. */
  private finishedLate: number[] = [];
  private lastRead: number;

  constructor(
    private readonly startAfterRow: number,
    private readonly skipRows: ReadonlySet<number> | undefined
  ) {
    this.lastRead = startAfterRow;
    this.finishedLate = [...(skipRows ?? [])].filter((row) => row > startAfterRow);
  }

  /** True for a row this run must still import. */
  isToDo(row: number): boolean {
    return row > this.startAfterRow && !this.skipRows?.has(row);
  }

  read(row: number): void {
    this.lastRead = row;
  }

  opened(row: number): void {
    this.open.add(row);
  }

  finished(row: number): void {
    this.open.delete(row);
    this.finishedLate.push(row);
  }

  checkpoint(): { resumeAfterRow: number; doneBeyond: number[] } {
    let firstOpen = Number.POSITIVE_INFINITY;
    for (const row of this.open) {
      firstOpen = Math.min(firstOpen, row);
    }
    const resumeAfterRow = Number.isFinite(firstOpen) ? firstOpen - 1 : this.lastRead;
    this.finishedLate = [...new Set(this.finishedLate.filter((row) => row > resumeAfterRow))].sort((a, b) => a - b);
    return { resumeAfterRow, doneBeyond: [...this.finishedLate] };
  }
}

/** Cells longer than this are hashed by sample (see RowParser.contentHash): over the 1 MB request limit. */
const MAX_HASHED_CELL = 1_048_576;

/** What of a cell is hashed: all of it, or for a cell too long to send its length and ends. */
function hashedPart(cell: string): string {
  return cell.length > MAX_HASHED_CELL ? `${cell.length}:${cell.slice(0, 4096)}${cell.slice(-4096)}` : cell;
}

/** Turns a CSV record into a row plan, or a final (failed or skipped) result when the row is not written. */
class RowParser {
  /** Row keys seen so far (one-column keys regardless of case: servers may match identifiers that way). */
  private readonly seen: IdRegistry;
  /** The table's columns present in the file, and where they are in each record. */
  private readonly columns: ColumnIndex;
  private readonly columnPositions: number[];
  /** Where each key column is in a record (-1: not in the header); the whole row's columns for a table without a key. */
  private readonly keyPositions: number[];
  private readonly singleColumnKey: boolean;
  /** A rejected-rows file that came back has its neutralising apostrophes removed as cells are read. */
  private readonly cells: CellReading;

  constructor(
    private readonly file: string,
    private readonly table: TableDefinition,
    private readonly header: string[],
    private readonly context: MappingContext<unknown>,
    expectedRows: number
  ) {
    this.columns = columnIndex(header, table.columns);
    this.columnPositions = [...this.columns.values()];
    const keyColumns = table.key.length ? table.key : table.columns.map((c) => c.name);
    this.keyPositions = keyColumns.map((name) => header.indexOf(name));
    this.singleColumnKey = table.key.length === 1;
    // Whole-row keys compare exactly; identifiers made from key columns may be matched regardless of case.
    this.seen = new IdRegistry(expectedRows, { foldCase: table.key.length > 0 });
    // Decided from the header, as inspectCsv decides FileShape.rejectedRowsFile: the parser is given the header only.
    this.cells = isRejectedRowsHeader(header) ? 'rejected-rows' : 'as-is';
  }

  private allEmpty(fields: readonly string[]): boolean {
    for (const index of this.columnPositions) {
      if (readCell(fields[index], this.cells) !== '') {
        return false;
      }
    }
    return true;
  }

  /** The key cells as written in the file ('' for absent ones, also when the row is too short). */
  private keyCells(fields: readonly string[]): string[] {
    return this.keyPositions.map((index) => (index >= 0 ? readCell(fields[index], this.cells) : ''));
  }

  /**
   * A hash of the row's content (the table's columns), to tell an exact repeat from a clash of
   * keys. Cells are hashed one by one (joining them would copy a 50 MB note), and a cell longer
   * than a request can carry by its length and ends only: a row holding one can never be written,
   * and hashing it whole takes seconds in the bot sandbox.
   */
  private contentHash(fields: readonly string[]): number {
    let hash = 0;
    for (const index of this.columnPositions) {
      hash = Math.imul(hash ^ hashA(hashedPart(readCell(fields[index], this.cells))), 0x01000193) >>> 0;
    }
    return hash;
  }

  /** What identifies a row: the key text checked for repeats ('' when there is none), and its value and id as reports show it. */
  private identify(fields: readonly string[]): { text: string; value: string; sourceId?: string } {
    const cells = this.keyCells(fields);
    if (this.singleColumnKey) {
      return { text: cells[0], value: cells[0], sourceId: visibleSourceId(cells[0]) || undefined };
    }
    if (cells.every((c) => c === '')) {
      return { text: '', value: '' };
    }
    const parts = cells.map(hashedPart);
    const value = keyValue(parts, false);
    return { text: keyText(parts), value, sourceId: value };
  }

  /** Registers the key of a row imported by an earlier run (resuming). */
  remember(record: CsvRecord): void {
    // As parse(): a malformed or ragged row claims no key (one long run never records it either).
    if (record.malformed || record.fields.length !== this.header.length || this.allEmpty(record.fields)) {
      return;
    }
    const { text } = this.identify(record.fields);
    if (text) {
      this.seen.add(text, record.row, this.contentHash(record.fields));
    }
  }

  parse(
    record: CsvRecord
  ): RowResult | { sourceId?: string; unit: WritingUnit } | { sourceId?: string; item: AggregateItem<unknown> } {
    const { row, fields } = record;
    if (record.malformed) {
      return failedRow(row, record.malformed);
    }
    if (fields.length !== this.header.length) {
      const guessedId = this.singleColumnKey ? visibleSourceId(this.keyCells(fields)[0]) || undefined : undefined;
      const hint =
        fields.length > this.header.length
          ? 'a value containing the delimiter without quotes?'
          : 'a missing value, or a line break inside an unquoted value?';
      return failedRow(
        row,
        `row has ${fields.length} fields but the header has ${this.header.length} (${hint})`,
        undefined,
        guessedId
      );
    }
    // Hot path (runs per row): plain loops, no closures, no per-row maps.
    if (this.allEmpty(fields)) {
      return { row, state: 'skipped', reason: 'every column is empty' };
    }

    const key = this.identify(fields);
    const sourceId = key.sourceId;
    if (key.text) {
      const first = this.seen.claim(key.text, row, this.contentHash(fields));
      if (first !== undefined) {
        if (first.sameContent) {
          return { row, sourceId, state: 'skipped', reason: `exact duplicate of row ${first.row}` };
        }
        const keyName = this.table.key.join(', ');
        const same = first.sameSpelling ? '' : ' spelled differently (ids that differ only in case are the same id to a FHIR server)';
        return failedRow(row, `duplicate ${keyName} ${sourceId}: first seen at row ${first.row}${same}`, this.table.key[0], sourceId);
      }
    }

    const reader = new RowReader(row, fields, this.columns, sourceId, this.cells, key.value);
    try {
      if (this.table.kind === 'aggregate') {
        const item = this.table.parseRow(reader, this.context);
        return reader.ok ? { sourceId, item: { row, sourceId: sourceId ?? '', item } } : rowFailure(reader);
      }
      const unit = this.table.mapRow(reader, this.context);
      if (unit.kind === 'skip') {
        return { row, sourceId, state: 'skipped', reason: unit.reason };
      }
      return reader.ok ? { sourceId, unit } : rowFailure(reader);
    } catch (err) {
      // A table's own bug must not stop the file: the row fails with the reason.
      return failedRow(
        row,
        `could not map the row (${this.file}, table ${this.table.name}): ${normalizeErrorString(err)}`,
        undefined,
        sourceId
      );
    }
  }
}

function failedRow(row: number, message: string, column?: string, sourceId?: string): RowResult {
  return { row, sourceId, state: 'failed', errors: [{ row, column, sourceId, message }] };
}

function rowFailure(reader: RowReader): RowResult {
  return { row: reader.row, sourceId: reader.sourceId, state: 'failed', errors: reader.problems };
}

/** An aggregate file (catalog) lands as one transaction; every row shares its fate. */
async function importAggregate(
  medplum: MedplumClient,
  table: AggregateTable<unknown, unknown>,
  items: AggregateItem<unknown>[],
  fields: Map<number, string[]>,
  context: MappingContext<unknown>,
  executor: BatchExecutor,
  writer: PlanFirstWriter,
  sink: { dryRun?: boolean; plan?: boolean; finish: (r: RowResult) => void; wouldWrite: Map<string, number> }
): Promise<void> {
  if (items.length === 0) {
    return;
  }
  const plan = await executor.retrying(`reading the stored ${table.name}`, () => table.plan(medplum, items, context));
  if (sink.dryRun) {
    for (const write of plan.writes) {
      sink.wouldWrite.set(write.resource.resourceType, 1);
    }
    items.forEach((i) => sink.finish({ row: i.row, sourceId: i.sourceId, state: 'skipped', reason: DRY_RUN_REASON }));
    return;
  }
  if (sink.plan) {
    items.forEach((i) => sink.finish({ row: i.row, sourceId: i.sourceId, state: plan.rowStates.get(i.row) ?? 'updated' }));
    return;
  }
  const unit: WritingUnit = { kind: 'transaction', writes: plan.writes };
  const planned = planRow(items[0].row, undefined, unit);
  const maxBytes = context.settings.maxRequestBytes;
  const failure =
    planned.size <= maxBytes ? await writeAsOneTransaction(planned, writer) : await writeInParts(medplum, plan.writes, executor, maxBytes);
  for (const item of items) {
    if (failure) {
      sink.finish({
        row: item.row,
        sourceId: item.sourceId,
        state: 'failed',
        fields: fields.get(item.row),
        errors: [{ row: item.row, sourceId: item.sourceId, message: failure }],
      });
    } else {
      sink.finish({ row: item.row, sourceId: item.sourceId, state: plan.rowStates.get(item.row) ?? 'updated' });
    }
  }
}

/** The usual way: every write of the aggregate in one transaction. Returns why it failed, if it did. */
async function writeAsOneTransaction(planned: PlannedRow, writer: PlanFirstWriter): Promise<string | undefined> {
  const [result] = await writer.write([planned]);
  if (!result) {
    throw new OutOfTimeError('before the catalog could be written');
  }
  return result.state === 'failed' ? `catalog not written: ${result.errors?.[0]?.message ?? 'not written'}` : undefined;
}

/**
 * A catalog too large for one request (about 6,300 codes and more): each resource written in
 * parts that fit (see writeInChunks). Returns why it failed, if it did: a later run completes it.
 */
async function writeInParts(
  medplum: MedplumClient,
  writes: readonly ResourceWrite[],
  executor: BatchExecutor,
  maxBytes: number
): Promise<string | undefined> {
  try {
    for (const write of writes) {
      const { listPath } = write;
      if (!listPath) {
        throw new Error(`the ${write.label} is larger than one request and cannot be split`);
      }
      await writeInChunks(medplum, { ...write, listPath }, (what, request) => executor.retrying(what, request), maxBytes);
    }
    return undefined;
  } catch (err) {
    if (err instanceof OutOfTimeError) {
      throw err;
    }
    return `catalog not written completely (too large for one request, it is written in parts): ${normalizeErrorString(err)}; import the file again to complete it`;
  }
}

function summarize(results: RowResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) {
    counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  }
  return [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
}
