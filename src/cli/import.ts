import { normalizeErrorString } from '@medplum/core';
import { Command, InvalidArgumentError } from 'commander';
import { basename } from 'node:path';
import type { CsvDocument, FileShape, ImportSettings } from '../lib';
import { defaultTables, importCsv, inspectCsv, orderByDependencies, resolveSettings } from '../lib';
import { csvFromFile } from '../lib/csv/file';
import { chooseTarget } from './connect';
import { redactUrls } from './redact';
import type { FileOutcome } from './print';
import { formatReports } from './print';
import { createProgressDisplay } from './progress';
import { isMainModule, runCommand } from './run-command';

interface CliOptions {
  dryRun?: boolean;
  local?: boolean;
  table?: string;
  batchSize?: number;
  identifierBase?: string;
}

/**
 * `npm run import -- <files...>`: imports CSV files, parents first, into the local in-memory
 * Medplum or, when MEDPLUM_BASE_URL and credentials are set, into that Medplum. Exits 1 when
 * any row failed or any file could not be imported.
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('import')
    .description('Import legacy CSV exports into Medplum (patients, conditions, patient_conditions, encounters)')
    .argument('<files...>', 'CSV files; imported in dependency order whatever order they are given in')
    .option('--dry-run', 'parse, validate and map every row; report what would be written; write nothing')
    .option('--local', 'use the local in-memory Medplum even when MEDPLUM_BASE_URL is set')
    .option('--table <name>', 'force the table instead of recognising it from the header (all files)')
    .option('--batch-size <n>', 'rows per batch request', parseBatchSize)
    .option('--identifier-base <uri>', 'base URI of the source system identifiers (default: IDENTIFIER_BASE or built-in)')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const options = program.opts<CliOptions>();
  const settings = resolveSettings({
    batchSize: options.batchSize,
    identifierBase: options.identifierBase ?? process.env.IDENTIFIER_BASE,
  });

  const target = await chooseTarget({ local: options.local });
  process.stderr.write(`Importing into ${target.description}${options.dryRun ? ' (dry run)' : ''}\n`);

  const outcomes = await importFiles(program.args, settings, options, target.medplum);
  // File errors may repeat the server's URL (network errors do), credentials included.
  process.stdout.write(redactUrls(formatReports(outcomes), [process.env.MEDPLUM_BASE_URL]) + '\n');
  const failed = outcomes.some((o) => o.error || (o.report?.failed ?? 0) > 0);
  return failed ? 1 : 0;
}

async function importFiles(
  paths: string[],
  settings: ImportSettings,
  options: CliOptions,
  medplum: Parameters<typeof importCsv>[0]
): Promise<FileOutcome[]> {
  const outcomes: FileOutcome[] = [];
  const ready: { doc: CsvDocument; shape: FileShape }[] = [];
  for (const path of paths) {
    try {
      const doc = await csvFromFile(path);
      ready.push({ doc, shape: await inspectCsv(doc, defaultTables(), options.table) });
    } catch (err) {
      outcomes.push({ file: basename(path), error: normalizeErrorString(err) });
    }
  }

  const progress = createProgressDisplay();
  for (const { doc, shape } of orderByDependencies(ready, (r) => r.shape.table)) {
    try {
      const { report } = await importCsv(medplum, doc, {
        settings,
        shape,
        table: options.table,
        dryRun: options.dryRun,
        onProgress: (p) => progress.update(p),
      });
      outcomes.push({ file: doc.name, report });
    } catch (err) {
      outcomes.push({ file: doc.name, error: normalizeErrorString(err) });
    } finally {
      progress.stop();
    }
  }
  return outcomes;
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
