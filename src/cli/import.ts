import { normalizeErrorString } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CsvDocument, FileShape, ImportReport, ImportSettings, RowResult, TableDefinition } from '../lib';
import type { ReconcileReport } from '../lib/reconcile';
import { isReconciled, reconcileFile } from '../lib/reconcile';
import { DEFAULT_PROFILE, findTable, ImportFileError, importCsv, inspectCsv, MappingSetError, orderByDependencies, profileNames, resolveSettings } from '../lib';
import { describeProblem } from '../lib/mapping/problems';
import { csvFromFile } from '../lib/csv/file';
import type { Target } from './connect';
import { chooseTarget, loadEnvironment } from './connect';
import { chooseMappingSet, unknownProfileMessage } from './mapping-set';
import type { FileOutcome } from './print';
import { PlanRowsFile, planRowsFormat } from './plan-rows';
import { formatReconciliations, formatReports, formatShown } from './print';
import type { ProgressStream } from './progress';
import { createProgressDisplay } from './progress';
import { redactUrls } from './redact';
import { RejectedRowsFiles } from './rejected';
import { isMainModule, runCommand } from './run-command';

interface CliOptions {
  dryRun?: boolean;
  local?: boolean;
  table?: string;
  batchSize?: number;
  identifierBase?: string;
  profile?: string;
  mapping?: string[];
  show?: number;
  report?: string;
  rejected?: string;
  plan?: boolean;
  planRows?: string;
  onConflict?: 'keep' | 'overwrite';
  reconcile?: boolean;
}

const ON_CONFLICT_CHOICES = ['keep', 'overwrite'];

/** Where the command writes, and the Medplum it imports into (tests run it in-process). */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The progress display's stream (a bar on a terminal, lines otherwise). */
  progress: ProgressStream;
  /** Chooses the Medplum: by default the local one or MEDPLUM_BASE_URL's (connect.ts). */
  target: (options: { local?: boolean }) => Promise<Target>;
}

const DEFAULT_IO: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  progress: process.stderr,
  target: chooseTarget,
};

const HELP_NOTES = `
Mappings:
  Without --profile or --mapping, files are read with the '${DEFAULT_PROFILE}' profile (the migration
  guide's tables). --mapping takes a folder of *.mapping.json files (with the dictionary CSVs they
  name and an optional profile.json) or one *.mapping.json file (with the dictionary CSVs it names
  from its folder); it may be given several times. With --profile as well, the set is the
  profile's mappings plus the given ones: a given mapping replaces the profile's mapping (or
  built-in table) of the same table name. Problems in the mappings are listed, one per line with
  the file and the place in it (a JSON pointer), and nothing is read or imported (exit code 2).

Plan and reconcile (both write nothing):
  --plan looks every row up in Medplum and reports what an import would do now: per file how many
  rows would be created, updated, unchanged, in conflict (elements changed in Medplum since the last
  import, which an import keeps unless --on-conflict overwrite) or failed. --plan-rows writes each
  row's action and the element paths it would change (or that are in conflict), never values.
  --reconcile compares each file with Medplum by identifier: the rows (mapped + rejected + skipped),
  resources the rows name that are missing, resources under the file's identifier systems that no
  row names (listed, never deleted), identifiers held by several resources, and references that do
  not resolve to exactly one resource. It exits 1 when anything does not reconcile.

Patient data:
  --show prints mapped resources, which hold the files' cell values: they go to standard output
  only, never to logs, progress lines or the --report file. The --rejected CSV files hold the
  rejected rows' cells, as in the input files: keep them where the input files are kept.

Exit codes: 0 every row imported (or skipped); 1 a row failed or a file could not be imported;
2 nothing was imported (bad mappings or options, no connection).
`;

/**
 * `npm run import -- <files...>`: imports CSV files, parents first, into the local in-memory
 * Medplum or, when MEDPLUM_BASE_URL and credentials are set, into that Medplum. Exits 1 when
 * any row failed or any file could not be imported, 2 when nothing could be (mapping problems).
 */
export async function main(argv: string[], io: Partial<CliIo> = {}): Promise<number> {
  const { stdout, stderr, progress, target: chooseMedplum } = { ...DEFAULT_IO, ...io };
  const program = new Command()
    .name('import')
    .description('Import legacy CSV exports into Medplum, mapped by a profile (default: guide) or your own mappings')
    .argument('<files...>', 'CSV files; imported parents first whatever order they are given in')
    .option('--profile <name>', `the built-in mapping set to read the files with: ${profileNames().join(', ')} (default: ${DEFAULT_PROFILE})`, parseProfile)
    .option('--mapping <path>', 'a mapping folder or *.mapping.json file (repeatable); see Mappings below', collect)
    .option('--dry-run', 'parse, validate and map every row; report what would be written; write nothing')
    .option('--plan', 'look every row up in Medplum and report what an import would do (created, updated, unchanged, conflict, failed); write nothing')
    .option('--plan-rows <file>', "with --plan: write each row's action and changed element paths (never values) to a .csv or .json file")
    .addOption(
      new Option('--on-conflict <mode>', 'an element changed in Medplum since the last import: keep it and report a conflict, or overwrite it (default: ON_CONFLICT, else keep)').choices(ON_CONFLICT_CHOICES)
    )
    .option('--reconcile', 'compare the files with Medplum by identifier (missing, extra, duplicate resources, unresolved references); write nothing')
    .option('--show <n>', 'print the first n mapped resources of each file as JSON (use with --dry-run to try a mapping)', parseCount)
    .option('--report <file.json>', "write every file's full report, as a JSON array in import order")
    .option('--rejected <folder>', 'write the rows that failed, per file, as CSV files to fix and import again')
    .option('--local', 'use the local in-memory Medplum even when MEDPLUM_BASE_URL is set')
    .option('--table <name>', 'force the table instead of recognising it from the header (all files)')
    .option('--batch-size <n>', 'rows per batch request', parseBatchSize)
    .option('--identifier-base <uri>', 'base URI of the source system identifiers (default: IDENTIFIER_BASE or built-in)')
    .addHelpText('after', HELP_NOTES)
    .configureOutput({ writeOut: stdout, writeErr: stderr })
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const options = program.opts<CliOptions>();
  const usage = usageProblem(options);
  if (usage) {
    stderr(`import: ${usage}\n`);
    return 2;
  }
  // IDENTIFIER_BASE and ON_CONFLICT may come from a .env file too, like the connection settings.
  loadEnvironment();
  const onConflictVariable = process.env.ON_CONFLICT || undefined;
  if (options.onConflict === undefined && onConflictVariable !== undefined && !ON_CONFLICT_CHOICES.includes(onConflictVariable)) {
    stderr(`import: ON_CONFLICT must be "keep" or "overwrite"\n`);
    return 2;
  }
  const settings = resolveSettings({
    batchSize: options.batchSize,
    identifierBase: options.identifierBase ?? process.env.IDENTIFIER_BASE,
    onConflict: options.onConflict ?? onConflictVariable,
  });

  // The mappings are checked before any CSV is read and before connecting.
  let chosen: ReturnType<typeof chooseMappingSet>;
  try {
    chosen = chooseMappingSet({ profile: options.profile, mappings: options.mapping ?? [] });
  } catch (err) {
    if (!(err instanceof MappingSetError)) {
      throw err;
    }
    const n = err.problems.length;
    stderr(`import: the mappings have ${n} problem${n === 1 ? '' : 's'}; nothing was imported:\n`);
    stderr(err.problems.map((p) => `${describeProblem(p)}\n`).join(''));
    return 2;
  }
  const tables = chosen.set.tables;
  if (options.table !== undefined && !findTable(options.table, tables)) {
    stderr(`import: --table: unknown table '${options.table}' (tables of ${chosen.description}: ${tables.map((t) => t.name).join(', ')})\n`);
    return 2;
  }
  for (const [flag, path] of [['--report', options.report], ['--plan-rows', options.planRows]] as const) {
    if (path && !isFolder(dirname(resolve(path)))) {
      stderr(`import: ${flag}: the folder of ${path} does not exist\n`);
      return 2;
    }
  }
  if (options.rejected) {
    mkdirSync(options.rejected, { recursive: true });
  }

  const target = await chooseMedplum({ local: options.local });
  if (options.reconcile) {
    stderr(`Reconciling with ${target.description}: nothing is written\n`);
  } else if (options.plan) {
    stderr(`Planning against ${target.description}: nothing is written${settings.onConflict === 'overwrite' ? ' (on conflict: overwrite)' : ''}\n`);
  } else {
    stderr(`Importing into ${target.description}${options.dryRun ? ' (dry run)' : ''}${settings.onConflict === 'overwrite' ? ' (on conflict: overwrite)' : ''}\n`);
  }
  stderr(`Mappings: ${chosen.description} (tables ${tables.map((t) => t.name).join(', ')})\n`);

  const context: ImportContext = { settings, options, tables, medplum: target.medplum, progress, stdout };
  const baseUrl = process.env.MEDPLUM_BASE_URL;
  if (options.reconcile) {
    return reconcileCommand(program.args, context, baseUrl);
  }
  const planRows = options.planRows ? new PlanRowsFile(options.planRows) : undefined;
  let outcomes: FileOutcome[];
  try {
    outcomes = await importFiles(program.args, { ...context, planRows });
  } finally {
    planRows?.close();
  }
  // File errors may repeat the server's URL (network errors do), credentials included.
  stdout(redactUrls(formatReports(outcomes), [baseUrl]) + '\n');
  if (planRows) {
    stdout(`\nPlanned rows (${planRows.rows}) written to ${planRows.path}.\n`);
  }

  const written = outcomes.filter((o) => o.rejected);
  if (options.rejected) {
    stdout(
      written.length
        ? `\nRejected rows of ${written.length} file${written.length === 1 ? '' : 's'} written to ${options.rejected}: fix them there and import those files again.\n`
        : `\nNo rows were rejected: nothing written to ${options.rejected}.\n`
    );
  }
  if (options.report) {
    const reports = outcomes.map((o): ImportReport | { file: string; error: string } => o.report ?? { file: o.file, error: o.error ?? '' });
    const json = JSON.stringify(reports, (_key, value: unknown) => (typeof value === 'string' ? redactUrls(value, [baseUrl]) : value), 2);
    writeFileSync(options.report, json + '\n');
    stdout(`Reports of ${reports.length} file${reports.length === 1 ? '' : 's'} written to ${options.report}.\n`);
  }
  const failed = outcomes.some((o) => o.error || (o.report?.failed ?? 0) > 0);
  return failed ? 1 : 0;
}

/** Options that do not go together, or a --plan-rows file of another kind; undefined when all is well. */
function usageProblem(options: CliOptions): string | undefined {
  const modes = [options.dryRun && '--dry-run', options.plan && '--plan', options.reconcile && '--reconcile'].filter(Boolean);
  if (modes.length > 1) {
    return `${modes.join(' and ')} cannot be combined: choose one`;
  }
  if (options.planRows !== undefined && !options.plan) {
    return '--plan-rows needs --plan';
  }
  if (options.planRows !== undefined && !planRowsFormat(options.planRows)) {
    return `--plan-rows: ${options.planRows} must end in .csv or .json`;
  }
  if (options.reconcile && (options.show !== undefined || options.rejected !== undefined)) {
    return `--reconcile cannot be combined with ${options.show !== undefined ? '--show' : '--rejected'}`;
  }
  return undefined;
}

interface ImportContext {
  settings: ImportSettings;
  options: CliOptions;
  tables: readonly TableDefinition[];
  medplum: Target['medplum'];
  progress: ProgressStream;
  stdout: (text: string) => void;
  planRows?: PlanRowsFile;
}

/** `--reconcile`: each file compared with Medplum, parents first; exits 1 when anything does not reconcile. */
async function reconcileCommand(paths: string[], context: ImportContext, baseUrl: string | undefined): Promise<number> {
  const { options, tables, stdout } = context;
  const { ready, outcomes } = await openFiles(paths, context);
  const progress = createProgressDisplay(context.progress);
  for (const { path, doc, shape } of orderByDependencies(ready, (r) => r.shape.table)) {
    const outcome: FileOutcome = { file: path };
    try {
      outcome.reconcile = await reconcileFile(context.medplum, doc, {
        settings: context.settings,
        shape,
        tables,
        table: options.table,
        onProgress: (p) => progress.update(p),
      });
    } catch (err) {
      outcome.error = fileError(err);
    } finally {
      progress.stop();
    }
    outcomes.push(outcome);
  }
  stdout(redactUrls(formatReconciliations(outcomes), [baseUrl]) + '\n');
  const shared = sharedTables(outcomes);
  if (shared.length) {
    stdout(`\nNote: ${shared.join(', ')}: several files of one table share its identifier systems; each file's extras include the other files' rows.\n`);
  }
  if (options.report) {
    const reports = outcomes.map((o): ReconcileReport | { file: string; error: string } => o.reconcile ?? { file: o.file, error: o.error ?? '' });
    const json = JSON.stringify(reports, (_key, value: unknown) => (typeof value === 'string' ? redactUrls(value, [baseUrl]) : value), 2);
    writeFileSync(options.report, json + '\n');
    stdout(`Reconciliations of ${reports.length} file${reports.length === 1 ? '' : 's'} written to ${options.report}.\n`);
  }
  return outcomes.every((o) => o.reconcile && isReconciled(o.reconcile)) ? 0 : 1;
}

/** Tables reconciled from more than one file. */
function sharedTables(outcomes: readonly FileOutcome[]): string[] {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    if (o.reconcile) {
      counts.set(o.reconcile.table, (counts.get(o.reconcile.table) ?? 0) + 1);
    }
  }
  return [...counts].filter(([, n]) => n > 1).map(([table]) => table);
}

/** The files opened and their structure checked; a file that cannot be read or recognised becomes its outcome. */
async function openFiles(
  paths: string[],
  context: ImportContext
): Promise<{ ready: { path: string; doc: CsvDocument; shape: FileShape }[]; outcomes: FileOutcome[] }> {
  const outcomes: FileOutcome[] = [];
  const ready: { path: string; doc: CsvDocument; shape: FileShape }[] = [];
  for (const path of paths) {
    try {
      // Named by the path as given: two patients.csv of different folders stay apart in the
      // table, the progress lines and the reports.
      const doc: CsvDocument = { ...(await csvFromFile(path)), name: path };
      ready.push({ path, doc, shape: await inspectCsv(doc, context.tables, context.options.table) });
    } catch (err) {
      outcomes.push({ file: path, error: fileError(err) });
    }
  }
  return { ready, outcomes };
}

async function importFiles(paths: string[], context: ImportContext): Promise<FileOutcome[]> {
  const { options, tables } = context;
  const { ready, outcomes } = await openFiles(paths, context);

  const progress = createProgressDisplay(context.progress);
  const rejectedFiles = options.rejected ? new RejectedRowsFiles(options.rejected) : undefined;
  for (const { path, doc, shape } of orderByDependencies(ready, (r) => r.shape.table)) {
    const shown: { row: number; resource: Resource }[] = [];
    const rejected = rejectedFiles?.forFile(path, shape.header);
    const outcome: FileOutcome = { file: path };
    try {
      const { report } = await importCsv(context.medplum, doc, {
        settings: context.settings,
        shape,
        tables,
        table: options.table,
        dryRun: options.dryRun,
        plan: options.plan,
        keepFailedFields: rejected !== undefined,
        onProgress: (p) => progress.update(p),
        onRowResult:
          rejected || options.plan
            ? (r: RowResult) => {
                context.planRows?.add(path, r);
                if (r.state === 'failed') {
                  rejected?.add(r);
                  if (r.missingParent) {
                    outcome.waitingForParents = (outcome.waitingForParents ?? 0) + 1;
                  }
                }
              }
            : undefined,
        onMapped: options.show
          ? (row, resources) => {
              for (const resource of resources.slice(0, (options.show ?? 0) - shown.length)) {
                shown.push({ row, resource });
              }
            }
          : undefined,
      });
      outcome.report = report;
    } catch (err) {
      outcome.error = fileError(err);
    } finally {
      progress.stop();
    }
    try {
      outcome.rejected = rejected?.finish();
    } catch (err) {
      outcome.error = [outcome.error, `the rejected rows could not be written: ${normalizeErrorString(err)}`].filter(Boolean).join('; ');
    }
    outcomes.push(outcome);
    if (options.show) {
      context.stdout(formatShown(path, shown, outcome, shape.table.kind));
    }
  }
  return outcomes;
}

/** A whole-file problem without the file name the error starts with (the outcome names the file). */
function fileError(err: unknown): string {
  return err instanceof ImportFileError ? err.problem : normalizeErrorString(err);
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseProfile(value: string): string {
  if (!profileNames().includes(value)) {
    throw new InvalidArgumentError(unknownProfileMessage(value));
  }
  return value;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError('must be a whole number of at least 1');
  }
  return n;
}

function parseBatchSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new InvalidArgumentError('must be a whole number from 1 to 1000');
  }
  return n;
}

if (isMainModule(import.meta.url)) {
  runCommand('import', main);
}
