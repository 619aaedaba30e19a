import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { ImportOptions, RowResult, TableDefinition } from '../../src/lib';
import { csvFromText, defaultSettings, defaultTables, importCsv, loadMappingSet } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { createFakeClock } from '../helpers/clock';

/**
 * Issue 10, item 5: "a resumed run maps rows exactly as one long run". The per-file state that
 * decides a row's fate beyond the row itself is the set of row keys seen before it (a repeated key
 * fails, an exact repeat is skipped). A run that stops at a checkpoint and a later run that
 * resumes after it must together give every row the state one long run gives it, and leave the
 * same resources, wherever the checkpoint falls: for a keyed mapping and for a whole-row-key one,
 * with exact repeats and repeated keys on both sides of it.
 */

const settings = { ...defaultSettings(), batchSize: 1 };

/** The guide's patients table: key patient_id (repeats fail, exact repeats are skipped, case ignored). */
const KEYED_CSV = [
  'patient_id,first_name,last_name,birth_date,gender',
  'P001,John,Doe,1980-01-01,M', // 2 created
  'P002,Ann,Lee,1981-02-02,F', // 3 created
  'P001,John,Doe,1980-01-01,M', // 4 exact duplicate of row 2
  'p001,John,Doe,1980-01-01,M', // 5 duplicate of row 2, spelled differently
  'P003,Raj,Patel,1975-03-03,M', // 6 created
  'P002,Anne,Lee,1981-02-02,F', // 7 duplicate of row 3 with other content
  'P004,Mia,Wong,1990-04-04,X', // 8 failed (gender), its key taken
  'P001,John,Doe,1980-01-01,M', // 9 exact duplicate of row 2
  'P003,Raj,Patel,1975-03-03,F', // 10 duplicate of row 6
  'P005,Eva,Berg,1985-05-05,F', // 11 created
  'P004,Mia,Wong,1990-04-04,F', // 12 duplicate of row 8 (which failed)
  '', // 13 blank line: not a row
  'P005,Eva,Berg,1985-05-05,F', // 14 exact duplicate of row 11
  'P006,Tom,Ng,1970-06-06,M', // 15 created
  ',,,,', // 16 every column empty: skipped
  'P006,Tom,Ng,1970-06-06,M', // 17 exact duplicate of row 15
  'P007,Zoe,Kim,2000-07-07,U,extra', // 18 failed: one field too many (its key not taken)
  'P007,Zoe,Kim,2000-07-07,U', // 19 created
  'P002,Ann,Lee,1981-02-02,F', // 20 exact duplicate of row 3
].join('\n');

/** A mapping without a key: a row is identified by its whole content (exact repeats skipped). */
const READINGS_MAPPING = {
  name: 'readings',
  description: 'Device readings without an id column: one Observation per distinct row',
  columns: { patient_id: { required: true }, code: { required: true }, value: { required: true }, taken: { required: true } },
  resources: [
    {
      type: 'Observation',
      identifier: { system: '{$base}/reading', value: '{$key}' },
      elements: {
        status: { fixed: 'final' },
        'code.text': { column: 'code', required: true },
        valueString: '{value}',
        effectiveDateTime: { column: 'taken', required: true },
      },
    },
  ],
};

const WHOLE_ROW_CSV = [
  'patient_id,code,value,taken',
  'P001,HR,72,2024-01-01T08:00:00Z', // 2 created
  'P001,HR,74,2024-01-01T09:00:00Z', // 3 created
  'P001,HR,72,2024-01-01T08:00:00Z', // 4 exact duplicate of row 2
  'P001,hr,72,2024-01-01T08:00:00Z', // 5 created: whole rows compare exactly
  'P002,BP,120/80,2024-01-02T08:00:00Z', // 6 created
  'P002,BP,120/80,2024-01-02T08:00:00Z', // 7 exact duplicate of row 6
  'P001,HR,74,2024-01-01T09:00:00Z', // 8 exact duplicate of row 3
  'P003,HR,81,not-a-date', // 9 failed (taken)
  'P003,HR,81,not-a-date', // 10 exact duplicate of row 9
  ' P002 ,BP,120/80,2024-01-02T08:00:00Z', // 11 exact duplicate of row 6 (cells are trimmed)
  'P004,HR,60,2024-01-03T08:00:00Z', // 12 created
  'P001,HR,72,2024-01-01T08:00:00Z', // 13 exact duplicate of row 2
].join('\n');

interface Case {
  name: string;
  file: string;
  csv: string;
  tables: readonly TableDefinition[];
  type: 'Patient' | 'Observation';
}

const CASES: Case[] = [
  { name: 'a keyed mapping (guide patients, key patient_id)', file: 'patients.csv', csv: KEYED_CSV, tables: defaultTables(), type: 'Patient' },
  {
    name: 'a whole-row-key mapping',
    file: 'readings.csv',
    csv: WHOLE_ROW_CSV,
    tables: loadMappingSet([{ name: 'readings.mapping.json', text: JSON.stringify(READINGS_MAPPING) }]).tables,
    type: 'Observation',
  },
];

/** A row's fate as a report gives it: state and reason or messages. */
type RowState = [row: number, state: string, detail: string];

function rowState(result: RowResult): RowState {
  const detail = result.reason ?? (result.errors ?? []).map((e) => `${e.column ?? ''}: ${e.message}`).join('; ');
  return [result.row, result.state, detail];
}

function byRow(states: RowState[]): RowState[] {
  return [...states].sort((a, b) => a[0] - b[0]);
}

/** The stored resources of a type, without what the server assigns (id, meta), as sorted JSON. */
function resources(medplum: LocalMedplum, type: Case['type']): string[] {
  return medplum
    .allResources(type)
    .map((r: Resource) => {
      const { id: _id, meta: _meta, ...rest } = r as Resource & { meta?: unknown };
      return JSON.stringify(rest);
    })
    .sort();
}

async function oneLongRun(c: Case): Promise<{ states: RowState[]; stored: string[] }> {
  const medplum = createLocalMedplum();
  const states: RowState[] = [];
  const { stoppedAt } = await importCsv(medplum, csvFromText(c.file, c.csv), { tables: c.tables, settings, onRowResult: (r) => states.push(rowState(r)) });
  expect(stoppedAt).toBeUndefined();
  return { states: byRow(states), stored: resources(medplum, c.type) };
}

/** Where a row's first occurrence and its repeat are, by the long run's messages. */
function repeatPairs(states: RowState[]): [first: number, repeat: number][] {
  return states.flatMap(([row, , detail]): [number, number][] => {
    const first = /(?:first seen at row|exact duplicate of row) (\d+)/.exec(detail);
    return first ? [[Number(first[1]), row]] : [];
  });
}

interface Resumed {
  states: RowState[];
  stored: string[];
  checkpoints: number[];
  /** Which run (0, 1, ...) finished each row. */
  runOf: Map<number, number>;
}

/** Runs from `first`, then runs resuming from each checkpoint until the file is done; `each` adds options to every run. */
async function runUntilDone(c: Case, first: ImportOptions, medplum = createLocalMedplum(), each: () => ImportOptions = () => ({})): Promise<Resumed> {
  const states: RowState[] = [];
  const checkpoints: number[] = [];
  const runOf = new Map<number, number>();
  let options = first;
  for (let run = 0; run < 40; run++) {
    const onRowResult = (r: RowResult): void => {
      states.push(rowState(r));
      runOf.set(r.row, run);
    };
    const { stoppedAt } = await importCsv(medplum, csvFromText(c.file, c.csv), { tables: c.tables, settings, ...each(), ...options, onRowResult });
    if (!stoppedAt) {
      return { states: byRow(states), stored: resources(medplum, c.type), checkpoints, runOf };
    }
    checkpoints.push(stoppedAt.resumeAfterRow);
    options = { startAfterRow: stoppedAt.resumeAfterRow, skipRows: new Set(stoppedAt.doneBeyond) };
  }
  throw new Error('the resumed runs did not finish the file');
}

/**
 * A run that stops (as when its claim is lost) before reading row `rowsBeforeStop + 1` of the
 * rows to do, then runs that resume from each checkpoint. Batches of one row: a row is sent when
 * the next one is planned, so the last row read is left open and redone after the checkpoint.
 */
async function stoppedAfter(c: Case, rowsBeforeStop: number): Promise<Resumed> {
  let read = 0;
  return runUntilDone(c, { shouldStop: () => ++read > rowsBeforeStop });
}

/** A first run that finished exactly the rows up to `row`, and a run resuming after it. */
async function checkpointAt(c: Case, row: number): Promise<Resumed> {
  const medplum = createLocalMedplum();
  const states: RowState[] = [];
  const runOf = new Map<number, number>();
  const upTo = new Set(Array.from({ length: row }, (_, i) => i + 1));
  await importCsv(medplum, csvFromText(c.file, c.csv), {
    tables: c.tables,
    settings,
    onlyRows: upTo,
    onRowResult: (r) => {
      states.push(rowState(r));
      runOf.set(r.row, 0);
    },
  });
  const { stoppedAt } = await importCsv(medplum, csvFromText(c.file, c.csv), {
    tables: c.tables,
    settings,
    startAfterRow: row,
    onRowResult: (r) => {
      states.push(rowState(r));
      runOf.set(r.row, 1);
    },
  });
  expect(stoppedAt).toBeUndefined();
  return { states: byRow(states), stored: resources(medplum, c.type), checkpoints: [row], runOf };
}

describe.each(CASES)('resuming $name', (c) => {
  it('one long run gives the expected states (the baseline)', async () => {
    const { states, stored } = await oneLongRun(c);
    if (c.type === 'Patient') {
      expect(states.map(([row, state]) => `${row} ${state}`)).toEqual(
        [
          '2 created', '3 created', '4 skipped', '5 failed', '6 created', '7 failed', '8 failed', '9 skipped', '10 failed', '11 created',
          '12 failed', '14 skipped', '15 created', '16 skipped', '17 skipped', '18 failed', '19 created', '20 skipped',
        ]
      );
      expect(states.find(([row]) => row === 12)?.[2]).toBe('patient_id: duplicate patient_id P004: first seen at row 8');
      expect(states.find(([row]) => row === 20)?.[2]).toBe('exact duplicate of row 3');
      expect(stored).toHaveLength(6);
    } else {
      expect(states.map(([row, state]) => `${row} ${state}`)).toEqual(
        ['2 created', '3 created', '4 skipped', '5 created', '6 created', '7 skipped', '8 skipped', '9 failed', '10 skipped', '11 skipped', '12 created', '13 skipped']
      );
      expect(states.find(([row]) => row === 10)?.[2]).toBe('exact duplicate of row 9');
      expect(states.find(([row]) => row === 13)?.[2]).toBe('exact duplicate of row 2');
      expect(stored).toHaveLength(5);
    }
  });

  it('a run stopped after any row, and the runs resuming from its checkpoint, give the states and resources of one long run', async () => {
    const long = await oneLongRun(c);
    const split = new Set<string>();
    for (let stopAfter = 0; stopAfter <= long.states.length; stopAfter++) {
      const resumed = await stoppedAfter(c, stopAfter);
      expect(resumed.states, `stopped after ${stopAfter} rows (checkpoints ${resumed.checkpoints.join(', ')})`).toEqual(long.states);
      expect(resumed.stored, `stopped after ${stopAfter} rows`).toEqual(long.stored);
      for (const [first, repeat] of repeatPairs(long.states)) {
        if ((resumed.runOf.get(first) ?? 0) < (resumed.runOf.get(repeat) ?? 0)) {
          split.add(`${first}-${repeat}`);
        }
      }
    }
    // Repeats whose first row was finished before the stop and whose repeat after it.
    expect(split.size).toBeGreaterThanOrEqual(c.type === 'Patient' ? 6 : 4);
  }, 120_000);

  it('a checkpoint after any row, and the run resuming after it, give the states and resources of one long run', async () => {
    const long = await oneLongRun(c);
    const lastRow = long.states.at(-1)?.[0] ?? 0;
    const pairs = repeatPairs(long.states);
    expect(pairs.length).toBeGreaterThanOrEqual(c.type === 'Patient' ? 9 : 6);
    for (let row = 1; row <= lastRow; row++) {
      const resumed = await checkpointAt(c, row);
      expect(resumed.states, `checkpoint after row ${row}`).toEqual(long.states);
      expect(resumed.stored, `checkpoint after row ${row}`).toEqual(long.stored);
      // Each repeat is on the other side of this checkpoint from its first row, for some row.
      for (const [first, repeat] of pairs.filter(([first]) => first === row)) {
        expect([resumed.runOf.get(first), resumed.runOf.get(repeat)]).toEqual([0, 1]);
      }
    }
  }, 120_000);

  it('runs stopped by their deadline (a fake clock, a slow server) and resumed until done give the states and resources of one long run', async () => {
    const long = await oneLongRun(c);
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock, serverTime: { perRequestMs: 1000 } });
    // A request takes a second: a run has time for a few (the lookup of what is stored, a write),
    // then stops with a checkpoint.
    const resumed = await runUntilDone(c, {}, medplum, () => ({ executor: { clock }, deadline: clock.now() + 2_500 }));
    expect(resumed.checkpoints.length).toBeGreaterThan(2);
    expect(resumed.states).toEqual(long.states);
    expect(resumed.stored).toEqual(long.stored);
  });
});

describe('resuming after a row with malformed quoting', () => {
  // One long run fails the malformed row before its key is looked at (RowParser.parse checks
  // record.malformed first), so a later row with that key is new. A resumed run re-reads the rows
  // before its checkpoint with RowParser.remember, which must skip the malformed record too, or
  // the later row would fail as a duplicate of it.
  const csv = [
    'patient_id,first_name,last_name,birth_date,gender',
    'P001,"Jo"hn",Doe,1980-01-01,M', // 2 failed: malformed quoting (5 fields)
    'P002,Ann,Lee,1981-02-02,F', // 3 created
    'P001,John,Doe,1980-01-01,M', // 4 created in one long run
  ].join('\n');
  const c: Case = { name: 'malformed', file: 'patients.csv', csv, tables: defaultTables(), type: 'Patient' };

  it('one long run creates the later row with the malformed row\'s key', async () => {
    const long = await oneLongRun(c);
    expect(long.states).toEqual([
      [2, 'failed', ': malformed quoting (Trailing quote on quoted field is malformed)'],
      [3, 'created', ''],
      [4, 'created', ''],
    ]);
  });

  it('a run resuming after the malformed row gives the later row the same state', async () => {
    const long = await oneLongRun(c);
    const resumed = await stoppedAfter(c, 1);
    expect(resumed.checkpoints).toEqual([2]);
    // Today: [4, 'failed', 'patient_id: duplicate patient_id P001: first seen at row 2'].
    expect(resumed.states).toEqual(long.states);
  });
});
