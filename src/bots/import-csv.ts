import type { BotEvent, MedplumClient } from '@medplum/core';
// Engine modules are imported directly, not through src/lib/index.ts, which also exports the
// local Medplum (MockClient, fhir-router): those must not end up in a deployed bot.
import { importCsv } from '../lib/engine/import-csv';
import { resolveBotInput } from '../lib/input/bot-input';
import type { ImportReport } from '../lib/report';

/**
 * import-csv: imports one CSV export (patients, condition catalog, patient conditions,
 * encounters with notes) into Medplum and returns the import report.
 *
 * Call it with $execute (text/plain CSV, or JSON { csv } / { document: { reference } }), or
 * from a Subscription on DocumentReference?contenttype=text/csv. Problems with the file as a
 * whole throw; row problems are listed in the report while the good rows land.
 */
export async function handler(medplum: MedplumClient, event: BotEvent): Promise<ImportReport> {
  const request = await resolveBotInput(medplum, event);
  const { report } = await importCsv(medplum, request.document, {
    table: request.table,
    settings: request.settings,
    dryRun: request.dryRun,
    // Row numbers, counts and source ids only: never cell values.
    log: (line) => console.log(`[import-csv] ${request.document.name}: ${line}`),
  });
  console.log(
    `[import-csv] ${request.document.name}: table ${report.table}, ${report.rows} rows: ${report.created} created, ` +
      `${report.updated} updated, ${report.unchanged} unchanged, ${report.failed} failed, ${report.skipped} skipped`
  );
  return report;
}
