import type { MedplumClient } from '@medplum/core';
import { generateId, normalizeErrorString } from '@medplum/core';
import type { PlannedRow } from '../bundles/batch';
import { BatchAssembler, planRow, unitWrites } from '../bundles/batch';
import type { CsvDocument, CsvRecord } from '../csv/document';
import { isBlankRecord } from '../csv/document';
import { classifyBatch } from '../execute/classify';
import type { ExecutorOptions, ExecutorStats } from '../execute/executor';
import { BatchExecutor } from '../execute/executor';
import type { ImportReport, RowResult } from '../report';
import { ReportBuilder } from '../report';
import type { ImportSettings } from '../settings';
import { defaultSettings } from '../settings';
import { defaultTables } from '../tables';
import type { ColumnIndex } from '../tables/row-reader';
import { columnIndex, RowReader } from '../tables/row-reader';
import type { AggregateItem, AggregateTable, MappingContext, TableDefinition, WriteUnit } from '../tables/types';
import type { FileShape } from './inspect';
import { IdRegistry } from './id-registry';
import { inspectCsv } from './inspect';

export interface ImportProgress {
  file: string;
  table: string;
  rowsDone: number;
  rowsTotal: number;
}

export interface ImportOptions {
  /** Force a table instead of recognising it from the header. */
  table?: string;
  /** The known tables (default: the four built-in ones). */
  tables?: readonly TableDefinition[];
  settings?: ImportSettings;
  /** Parse, validate and map every row; write nothing. */
  dryRun?: boolean;
  /** Skip rows up to this spreadsheet row number (resuming a checkpointed import). */
  startAfterRow?: number;
  /** Stop starting new batches at this time (ms since epoch); the report says where to resume. */
  deadline?: number;
  /** Asked before each row; true stops the import like a deadline (e.g. the job's claim was lost). */
  shouldStop?: () => boolean;
  /** Keep each failed row's original fields in its RowResult (for rejected-rows files). */
  keepFailedFields?: boolean;
  onProgress?: (progress: ImportProgress) => void;
  onRowResult?: (result: RowResult) => void;
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
}

export const DRY_RUN_REASON = 'dry run: valid, not written';

/**
 * Imports one CSV file: structure check (nothing written on failure) -> per row: validate and
 * map -> batches -> execution with retries -> one result per row -> report.
 */
export async function importCsv(
  medplum: MedplumClient,
  doc: CsvDocument,
  options: ImportOptions = {}
): Promise<ImportOutcome> {
  const tables = options.tables ?? defaultTables;
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

  const executor = new BatchExecutor(medplum, { log, ...options.executor });
  const prepare = table.prepare?.bind(table);
  const lookups = prepare
    ? await executor.retrying(`loading lookups for ${table.name}`, () => prepare(medplum, settings, doc.name))
    : undefined;
  const context: MappingContext<unknown> = { settings, lookups, now: now(), newUuid: generateId };
  const wouldWrite = new Map<string, number>();
  let rowsDone = 0;

  const finish = (result: RowResult): void => {
    if (!options.keepFailedFields) {
      delete result.fields;
    }
    report.add(result);
    options.onRowResult?.(result);
    rowsDone++;
  };
  const progress = (): void =>
    options.onProgress?.({ file: doc.name, table: table.name, rowsDone, rowsTotal: shape.dataRows });

  const send = async (rows: PlannedRow[] | undefined): Promise<void> => {
    if (!rows?.length) {
      return;
    }
    if (options.dryRun) {
      for (const row of rows) {
        for (const write of unitWrites(row.unit)) {
          const type = write.resource.resourceType;
          wouldWrite.set(type, (wouldWrite.get(type) ?? 0) + 1);
        }
        finish({ row: row.row, sourceId: row.sourceId, state: 'skipped', reason: DRY_RUN_REASON });
      }
    } else {
      const batch = await executor.execute(rows);
      const results = classifyBatch(rows, batch, table.references ?? {});
      results.forEach(finish);
      log(`rows ${rows[0].row}-${rows.at(-1)?.row}: ${summarize(results)}`);
    }
    progress();
  };

  const rowParser = new RowParser(doc.name, table, shape.header, context, shape.dataRows);
  const assembler = new BatchAssembler(settings.batchSize, settings.maxRequestBytes);
  const aggregateItems: AggregateItem<unknown>[] = [];
  const aggregateFields = new Map<number, string[]>();
  let lastRow = options.startAfterRow ?? 0;
  let isHeader = true;

  for await (const record of doc.records()) {
    if (isHeader) {
      isHeader = false;
      continue;
    }
    if (isBlankRecord(record.fields)) {
      continue;
    }
    if (record.row <= (options.startAfterRow ?? 0)) {
      // Rows done by an earlier run still count for duplicate ids, as in one long run.
      rowParser.remember(record);
      continue;
    }
    const outOfTime = options.deadline !== undefined && Date.now() >= options.deadline;
    if (table.kind === 'rows' && (outOfTime || options.shouldStop?.())) {
      report.set('resumeAfterRow', lastRow);
      log(`time budget reached: stopping after row ${lastRow}`);
      break;
    }
    lastRow = record.row;

    const parsed = rowParser.parse(record);
    if ('state' in parsed) {
      finish({ ...parsed, fields: record.fields });
      continue;
    }
    if ('item' in parsed) {
      aggregateItems.push(parsed.item);
      aggregateFields.set(record.row, record.fields);
      continue;
    }
    const planned = planRow(record.row, parsed.sourceId, parsed.unit, record.fields);
    const size = planned.entryBytes.length;
    if (size > settings.maxRequestBytes) {
      finish({
        row: record.row,
        sourceId: parsed.sourceId,
        state: 'failed',
        fields: record.fields,
        errors: [
          {
            row: record.row,
            sourceId: parsed.sourceId,
            message: `row too large to send: ${Math.ceil(size / 1024)} KB of JSON, over the ${Math.floor(settings.maxRequestBytes / 1024)} KB request limit`,
          },
        ],
      });
      continue;
    }
    await send(assembler.add(planned, size));
  }
  await send(assembler.flush());

  if (table.kind === 'aggregate') {
    await importAggregate(medplum, table, aggregateItems, aggregateFields, context, executor, {
      dryRun: options.dryRun,
      finish,
      wouldWrite,
    });
    progress();
  }

  const built = report.build();
  if (options.dryRun) {
    built.wouldWrite = Object.fromEntries(wouldWrite);
  }
  return { report: built, stats: executor.stats };
}

/** Turns a CSV record into a row plan, or a final (failed) result when the row is unusable. */
class RowParser {
  /** Source ids seen so far, regardless of case: servers may match identifiers that way. */
  private readonly seen: IdRegistry;
  /** The table's columns present in the file, and where they are in each record. */
  private readonly columns: ColumnIndex;
  private readonly columnPositions: number[];
  /** Where the id column is in each record; -1 when the header lacks it. */
  private readonly idIndex: number;

  constructor(
    private readonly file: string,
    private readonly table: TableDefinition,
    private readonly header: string[],
    private readonly context: MappingContext<unknown>,
    expectedRows: number
  ) {
    this.columns = columnIndex(header, table.columns);
    this.columnPositions = [...this.columns.values()];
    this.idIndex = header.indexOf(table.idColumn);
    this.seen = new IdRegistry(expectedRows);
  }

  private allEmpty(fields: readonly string[]): boolean {
    for (const index of this.columnPositions) {
      if (fields[index].trim() !== '') {
        return false;
      }
    }
    return true;
  }

  /** Registers the source id of a row imported by an earlier run (resuming). */
  remember(record: CsvRecord): void {
    const id = this.idIndex >= 0 ? record.fields[this.idIndex]?.trim() : undefined;
    if (id && record.fields.length === this.header.length) {
      this.seen.add(id, record.row);
    }
  }

  parse(
    record: CsvRecord
  ): RowResult | { sourceId?: string; unit: WriteUnit } | { sourceId?: string; item: AggregateItem<unknown> } {
    const { row, fields } = record;
    if (record.malformed) {
      return failedRow(row, record.malformed);
    }
    if (fields.length !== this.header.length) {
      const guessedId =
        this.idIndex >= 0 && fields.length > this.idIndex ? fields[this.idIndex].trim() || undefined : undefined;
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

    const idColumn = this.table.idColumn;
    const sourceId = (this.idIndex >= 0 ? fields[this.idIndex].trim() : '') || undefined;
    if (sourceId) {
      const first = this.seen.claim(sourceId, row);
      if (first !== undefined) {
        const same = first.sameSpelling ? '' : ' spelled differently (ids that differ only in case are the same id to a FHIR server)';
        return failedRow(row, `duplicate ${idColumn} ${sourceId}: first seen at row ${first.row}${same}`, idColumn, sourceId);
      }
    }

    const reader = new RowReader(row, fields, this.columns, sourceId);
    try {
      if (this.table.kind === 'aggregate') {
        const item = this.table.parseRow(reader, this.context);
        return reader.ok ? { sourceId, item: { row, sourceId: sourceId ?? '', item } } : rowFailure(reader);
      }
      const unit = this.table.mapRow(reader, this.context);
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
  sink: { dryRun?: boolean; finish: (r: RowResult) => void; wouldWrite: Map<string, number> }
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
  const unit: WriteUnit = { kind: 'transaction', writes: plan.writes };
  const planned = planRow(items[0].row, undefined, unit);
  const batch = await executor.execute([planned]);
  const [result] = classifyBatch([planned], batch, table.references ?? {});
  for (const item of items) {
    if (result.state === 'failed') {
      const message = result.errors?.[0]?.message ?? 'not written';
      sink.finish({
        row: item.row,
        sourceId: item.sourceId,
        state: 'failed',
        fields: fields.get(item.row),
        errors: [{ row: item.row, sourceId: item.sourceId, message: `catalog not written: ${message}` }],
      });
    } else {
      sink.finish({ row: item.row, sourceId: item.sourceId, state: plan.rowStates.get(item.row) ?? 'updated' });
    }
  }
}

function summarize(results: RowResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) {
    counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  }
  return [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
}
