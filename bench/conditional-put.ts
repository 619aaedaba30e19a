/**
 * The baseline of issue 11: what the importer sent before plan-first writes. Each row's mapped
 * resource goes out as a conditional PUT (`PUT Patient?identifier=SYSTEM|VALUE`, the URL escaped by
 * src/lib/fhir/search-values.ts as the importer escaped it), a row whose resources land together
 * as a nested transaction of conditional PUTs, in batch bundles of 500 entries, one request at a
 * time. The bodies are the resources the importer maps from the same rows (the same tables, the
 * same RowReader), without the ownership tag the plan-first writer adds.
 *
 * Kept small on purpose: no retries, no pacing, no plan. Every entry must answer 200 or 201, else
 * the run throws: a fast baseline that failed its rows would look like a good figure.
 */
import type { MedplumClient } from '@medplum/core';
import { ContentType, generateId } from '@medplum/core';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { ImportSettings, TableDefinition } from '../src/lib';
import { csvFromText, defaultSettings, defaultTables } from '../src/lib';
import { batchBody, encodeEntry } from '../src/lib/bundles/batch';
import { identifierQuery } from '../src/lib/fhir/search-values';
import { columnIndex, RowReader } from '../src/lib/tables/row-reader';
import type { ResourceWrite, WritingUnit } from '../src/lib/tables/types';

export interface ConditionalPutResult {
  rows: number;
  /** Entries by answer status: `201` created, `200` updated or unchanged (the status does not tell). */
  statuses: Record<string, number>;
  requests: number;
}

function putEntry(write: ResourceWrite): BundleEntry {
  return {
    ...(write.fullUrl ? { fullUrl: write.fullUrl } : {}),
    request: { method: 'PUT', url: identifierQuery(write.resource.resourceType, write.match.system, write.match.value) },
    resource: write.resource,
  };
}

/** One outer entry per row: a conditional PUT, or a nested transaction (`POST /`) of them. */
function rowEntry(unit: WritingUnit): BundleEntry {
  if (unit.kind === 'single') {
    return putEntry(unit.write);
  }
  return {
    request: { method: 'POST', url: '/' },
    resource: { resourceType: 'Bundle', type: 'transaction', entry: unit.writes.map(putEntry) },
  };
}

/**
 * Sends every row of a CSV of one table (patients by default) as conditional-PUT batches. Rows
 * must all map (the bench's generated files do); a row that does not throws.
 */
export async function conditionalPutBatches(
  medplum: MedplumClient,
  text: string,
  options: { settings?: ImportSettings; table?: string; batchSize?: number } = {}
): Promise<ConditionalPutResult> {
  const settings = options.settings ?? defaultSettings();
  const batchSize = options.batchSize ?? settings.batchSize;
  const table = defaultTables().find((t) => t.name === (options.table ?? 'patients')) as TableDefinition | undefined;
  if (table?.kind !== 'rows') {
    throw new Error(`conditional-PUT baseline: no row table ${options.table ?? 'patients'}`);
  }
  const context = { settings, lookups: undefined, now: new Date(), newUuid: generateId };
  const statuses: Record<string, number> = {};
  let columns: ReturnType<typeof columnIndex> | undefined;
  let keyPosition = -1;
  let rows = 0;
  let requests = 0;
  let entries: Uint8Array[] = [];

  const send = async (): Promise<void> => {
    if (entries.length === 0) {
      return;
    }
    requests++;
    const answer: Bundle = await medplum.post(medplum.fhirUrl(), batchBody(entries), ContentType.FHIR_JSON, {
      maxRetries: 0,
      cache: 'no-cache',
    });
    if ((answer.entry?.length ?? 0) !== entries.length) {
      throw new Error(`conditional-PUT baseline: ${entries.length} entries sent, ${answer.entry?.length ?? 0} answered`);
    }
    for (const entry of answer.entry ?? []) {
      const status = (entry.response?.status ?? '?').slice(0, 3);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== '200' && status !== '201') {
        throw new Error(`conditional-PUT baseline: an entry answered ${entry.response?.status}`);
      }
    }
    entries = [];
  };

  for await (const record of csvFromText('baseline.csv', text).records()) {
    if (!columns) {
      columns = columnIndex(record.fields, table.columns);
      keyPosition = record.fields.indexOf(table.key[0]);
      continue;
    }
    const sourceId = record.fields[keyPosition];
    const reader = new RowReader(record.row, record.fields, columns, sourceId);
    const unit = table.mapRow(reader, context);
    if (!reader.ok || unit.kind === 'skip') {
      throw new Error(`conditional-PUT baseline: row ${record.row} does not map (${reader.problems[0]?.message ?? 'skipped'})`);
    }
    entries.push(encodeEntry(rowEntry(unit)));
    rows++;
    if (entries.length >= batchSize) {
      await send();
    }
  }
  await send();
  return { rows, statuses, requests };
}
