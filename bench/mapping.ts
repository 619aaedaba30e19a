/**
 * The mapping stage alone: parse a CSV document and map every row with a profile's table (the
 * compiled mapping), exactly as the importer does per row (column index, row key, RowReader,
 * mapRow), with no duplicate check, no batching, no JSON and no server. Every run checks that each
 * row mapped without a problem, and that the rows skipped are the ones the input was made to skip.
 */
import { generateId } from '@medplum/core';
import { csvFromText, defaultSettings, loadProfile, normalizeColumnName } from '../src/lib';
import { unitWrites } from '../src/lib/bundles/batch';
import { keyValue } from '../src/lib/engine/row-key';
import { columnIndex, RowReader } from '../src/lib/tables/row-reader';
import type { MappingContext, RowTable } from '../src/lib/tables/types';
import { encountersCsv, patientsCsv } from '../test/helpers/generate';
import type { RunSample } from './measure';
import { syntheaConditions, syntheaEncounters, syntheaMedications, syntheaObservations } from './synthea-rows';

export interface MappingWorkload {
  /** Key in results.json. */
  key: string;
  label: string;
  /** What each row becomes, for the figure's note. */
  writes: string;
  profile: string;
  table: string;
  file: string;
  text: string;
  rows: number;
  /** Rows the table's skip rules skip (the rest must each write). */
  skipped: number;
}

/** The workloads: the guide profile's widest tables and the Synthea profile's busiest ones. */
export function mappingWorkloads(rows: number): MappingWorkload[] {
  const guide = (key: string, label: string, writes: string, table: string, file: string, text: string): MappingWorkload => ({
    key,
    label,
    writes,
    profile: 'guide',
    table,
    file,
    text,
    rows,
    skipped: 0,
  });
  const synthea = (key: string, label: string, writes: string, table: string, made: { text: string; skipped: number }): MappingWorkload => ({
    key,
    label,
    writes,
    profile: 'synthea-csv',
    table,
    file: `${table}.csv`,
    text: made.text,
    rows,
    skipped: made.skipped,
  });
  const patientIds = Array.from({ length: 1000 }, (_, i) => `G${String(i + 1).padStart(7, '0')}`);
  return [
    guide('mappingGuidePatients', 'guide patients', 'Patient', 'patients', 'patients.csv', patientsCsv(rows, 21)),
    guide(
      'mappingGuideEncounters',
      'guide encounters',
      'Encounter, and a ClinicalImpression in the same transaction for the two rows in three with a note',
      'encounters',
      'encounters.csv',
      encountersCsv(rows, patientIds, 22)
    ),
    synthea(
      'mappingSyntheaObservations',
      'Synthea observations',
      'Observation: numbers with UCUM units, texts, smoking status as a CodeableConcept; 7% simulation metrics skipped',
      'observations',
      syntheaObservations(rows, 23)
    ),
    synthea('mappingSyntheaEncounters', 'Synthea encounters', 'Encounter with Patient, Practitioner and Organization references', 'encounters', syntheaEncounters(rows, 24)),
    synthea('mappingSyntheaConditions', 'Synthea conditions', 'Condition, active or resolved', 'conditions', syntheaConditions(rows, 25)),
    synthea('mappingSyntheaMedications', 'Synthea medications', 'MedicationRequest, active or stopped, most with a reason', 'medications', syntheaMedications(rows, 26)),
  ];
}

function tableOf(workload: MappingWorkload): RowTable<unknown> {
  const table = loadProfile(workload.profile).tables.find((t) => t.name === workload.table);
  if (table?.kind !== 'rows') {
    throw new Error(`profile ${workload.profile} has no row table ${workload.table}`);
  }
  return table;
}

/** One run: parse + map every row of the workload; returns the rate. */
export async function mapOnly(workload: MappingWorkload): Promise<RunSample> {
  const table = tableOf(workload);
  const context: MappingContext<unknown> = { settings: defaultSettings(), lookups: undefined, now: new Date(), newUuid: generateId };
  const start = performance.now();
  let columns: ReturnType<typeof columnIndex> | undefined;
  let keyPositions: number[] = [];
  const single = table.key.length === 1;
  let rows = 0;
  let skipped = 0;
  let resources = 0;
  for await (const record of csvFromText(workload.file, workload.text).records()) {
    if (!columns) {
      const header = record.fields.map(normalizeColumnName);
      columns = columnIndex(header, table.columns);
      keyPositions = (table.key.length ? table.key : table.columns.map((c) => c.name)).map((name) => header.indexOf(name));
      continue;
    }
    rows++;
    const keyCells = keyPositions.map((i) => (i >= 0 ? (record.fields[i] ?? '').trim() : ''));
    const key = keyValue(keyCells, single);
    const reader = new RowReader(record.row, record.fields, columns, key, 'as-is', key);
    const unit = table.mapRow(reader, context);
    if (!reader.ok) {
      throw new Error(`mapping ${workload.table}: row ${record.row} did not map: ${reader.problems[0]?.message}`);
    }
    if (unit.kind === 'skip') {
      skipped++;
    } else {
      resources += unitWrites(unit).length;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  if (rows !== workload.rows || skipped !== workload.skipped || resources < rows - skipped) {
    throw new Error(`mapping ${workload.table}: ${rows} rows, ${skipped} skipped, ${resources} resources; expected ${workload.rows} rows, ${workload.skipped} skipped`);
  }
  return { rows, seconds, rowsPerSecond: rows / seconds };
}
