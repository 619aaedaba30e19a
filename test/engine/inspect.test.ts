import { describe, expect, it } from 'vitest';
import { csvFromText } from '../../src/lib/csv/document';
import { inspectCsv, MAX_LISTED_UNUSED_COLUMNS } from '../../src/lib/engine/inspect';
import type { FileShape } from '../../src/lib/engine/inspect';
import { ImportFileError } from '../../src/lib/errors';
import { defaultTables } from '../../src/lib/tables';

const PATIENTS = 'patient_id,first_name,last_name,birth_date,gender';

function inspect(text: string, table?: string): Promise<FileShape> {
  return inspectCsv(csvFromText('f.csv', text), defaultTables(), table);
}

/** The whole-file problem, after checking it is one and names the file. */
async function problemOf(text: string, table?: string): Promise<string> {
  const error = await inspect(text, table).then(
    () => undefined,
    (err: unknown) => err
  );
  expect(error).toBeInstanceOf(ImportFileError);
  expect((error as ImportFileError).message.startsWith('f.csv: ')).toBe(true);
  return (error as ImportFileError).problem;
}

describe('trailing empty header columns (Excel)', () => {
  it('are ignored with a warning when every cell under them is empty', async () => {
    const shape = await inspect(`${PATIENTS},,\nP001,John,Doe,1980-07-15,M,,\nP002,Jane,Smith,, F ,, \n`);
    expect(shape.table.name).toBe('patients');
    expect(shape.header).toEqual(['patient_id', 'first_name', 'last_name', 'birth_date', 'gender', '', '']);
    expect(shape.warnings).toEqual([
      'header columns 6-7 have no name and no values (trailing delimiters, as spreadsheets write them): ignored',
    ]);
  });

  it('one column: named as such', async () => {
    const shape = await inspect(`${PATIENTS},\nP001,John,Doe,1980-07-15,M,\n`);
    expect(shape.warnings).toEqual([
      'header column 6 has no name and no values (trailing delimiters, as spreadsheets write them): ignored',
    ]);
  });

  it('stay an error, naming the column, when a row has a value under them', async () => {
    expect(await problemOf(`${PATIENTS},,\nP001,John,Doe,1980-07-15,M,,\nP002,Jane,Smith,,F,,secret\n`)).toBe(
      'header column 6 has no name, but row 3 has a value in it'
    );
  });

  it('an unnamed column between named ones is an error', async () => {
    expect(await problemOf('patient_id,,first_name,last_name,birth_date,gender\nP1,x,A,B,,\n')).toBe('header column 2 has no name');
  });
});

describe('a file without its header row', () => {
  const headerless = 'P001,John,John,1980-07-15,M\nP002,Jane,Smith,1985-03-22,F\n';

  it('is named as such, without echoing row 1 (dates, numbers, repeated cells)', async () => {
    const problem = await problemOf(headerless);
    expect(problem).toBe('row 1 looks like data, not a header row: add the header row');
    expect(await problemOf('1001,2001,3001\n1002,2002,3002\n')).toBe(problem);
  });

  it('with a table named, lists the header the table wants', async () => {
    expect(await problemOf(headerless, 'patients')).toBe(
      'row 1 looks like data, not a header row: add the header row (patients: patient_id, first_name, last_name, birth_date, gender)'
    );
  });

  it('row 1 shaped like row 2 (same kind of cell in every column, ids with digits)', async () => {
    expect(await problemOf('C001,Essential hypertension,I10\nC002,Asthma,J45.909\n')).toBe(
      'row 1 looks like data, not a header row: add the header row'
    );
  });

  it('an unknown header over data of another shape is still an unknown header', async () => {
    expect(await problemOf('foo,bar\n1,2\n')).toMatch(/^the header matches no known table \(/);
    expect(await problemOf('foo,bar\nbaz,qux\n')).toMatch(/^the header matches no known table \(/);
  });
});

describe('repeated header columns', () => {
  it('name a known column by its name', async () => {
    expect(await problemOf(`${PATIENTS},gender\nP1,A,B,,,\n`)).toBe('column gender appears more than once in the header');
  });

  it('name other columns by position only (a header cell may be data)', async () => {
    const problem = await problemOf(`${PATIENTS},Jane Roe,x,Jane Roe\nP1,A,B,,,1,2,3\n`);
    expect(problem).toBe('header columns 6 and 8 have the same name');
  });
});

describe('the unused-columns warning', () => {
  it(`lists at most ${MAX_LISTED_UNUSED_COLUMNS} names, then how many more`, async () => {
    const extra = Array.from({ length: 25 }, (_, i) => `extra_${i + 1}`);
    const shape = await inspect(`${PATIENTS},${extra.join(',')}\nP1,A,B,,,${extra.map(() => '').join(',')}\n`);
    expect(shape.warnings).toEqual([
      `column(s) not used by table patients, ignored: ${extra.slice(0, 20).join(', ')} and 5 more`,
    ]);
  });

  it('names a header cell that does not look like a column name by its position', async () => {
    const shape = await inspect(`${PATIENTS},middle_name,1980-07-15,"=cmd()"\nP1,A,B,,,,,\n`);
    expect(shape.warnings).toEqual(['column(s) not used by table patients, ignored: middle_name, column 7, column 8']);
  });
});

describe('rejected-rows files coming back', () => {
  it('are recognised by their source_row and import_error columns; neutralised header cells are restored', async () => {
    const shape = await inspect(`${PATIENTS},'=extra,source_row,import_error\nP1,A,B,,,,3,oops\n`);
    expect(shape.rejectedRowsFile).toBe(true);
    expect(shape.header).toEqual([...PATIENTS.split(','), '=extra', 'source_row', 'import_error']);
    expect((await inspect(`${PATIENTS},'=extra\nP1,A,B,,,\n`)).rejectedRowsFile).toBe(false);
  });
});
