/**
 * The engine's public face: everything the bots, the command line and users' own tables need.
 * Data flow: input -> CsvDocument -> table (validate, map) -> batches -> executor -> results -> report.
 */
export type { CsvDocument, CsvRecord } from './csv/document';
export { csvFromText } from './csv/document';
export { ImportFileError, DependencyNotReadyError } from './errors';
export type { Checkpoint, ImportOptions, ImportOutcome, ImportProgress } from './engine/import-csv';
export { importCsv, DRY_RUN_REASON } from './engine/import-csv';
export type { FileShape } from './engine/inspect';
export { inspectCsv } from './engine/inspect';
export { orderByDependencies } from './engine/order';
export type { RetryPolicy, ExecutorOptions, ExecutorStats } from './execute/executor';
export { BatchExecutor, DEFAULT_RETRY_POLICY } from './execute/executor';
export type { BotCall, CsvSource, DirectImport } from './input/event';
export { classifyBotCall, BotInputError, HOW_TO_CALL, MAX_CSV_BYTES } from './input/event';
export type { ImportReport, RowError, RowResult, RowSkip, RowState } from './report';
export type { ImportSettings, SettingsInput } from './settings';
export { defaultSettings, resolveSettings, identifierSystem } from './settings';
export { defaultTables, detectTable, findTable, normalizeColumnName } from './tables';
export { conditionCatalogTable, catalogIdentity, ICD10_SYSTEM } from './tables/condition-catalog';
export { RowReader } from './tables/row-reader';
export type {
  AggregatePlan,
  AggregateTable,
  ColumnSpec,
  MappingContext,
  ResourceWrite,
  RowTable,
  TableDefinition,
  WriteUnit,
} from './tables/types';
export { single, together, referenceByIdentifier } from './tables/write-units';
export type { MappingFileSource, MappingSet } from './mapping/load';
export { loadMappingSet, MAPPING_SUFFIX } from './mapping/load';
export { MappingSetError } from './mapping/problems';
export type { MappingProblem } from './mapping/problems';
export type { MappingFile } from './mapping/format';
export { DEFAULT_PROFILE, loadProfile, profileNames, BUILT_IN_TABLES } from './profiles';
// Not exported here: the local in-memory Medplum (src/lib/local-medplum). It is built on
// development dependencies (@medplum/mock, @medplum/fhir-router), so the engine's entry point must
// not pull it in; the command line loads it with import() only when it is asked for.
