import type { Patient } from '@medplum/fhirtypes';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { csvFromText, importCsv } from '../../src/lib';
import { neutralizeFormula, restoreNeutralizedFormula } from '../../src/lib/csv/rejected-rows-format';
import { rejectedRowsCsv } from '../../src/lib/jobs/rejected-rows';
import { createLocalMedplum } from '../../src/lib/local-medplum';

describe('rejected-rows CSV', () => {
  it('neutralises header cells like data cells', () => {
    const csv = rejectedRowsCsv(['patient_id', '=cmd', '@x'], [{ row: 3, state: 'failed', fields: ['P1', '+1', 'a'], errors: [] }]);
    expect(csv.split('\r\n')[0]).toBe('"patient_id","\'=cmd","\'@x","source_row","import_error"');
    expect(csv.split('\r\n')[1]).toBe('"P1","\'+1","a","3",""');
  });

  it('a rejected-rows file rejected again gets one source_row and one import_error column, with fresh values', () => {
    const header = ['patient_id', 'gender', 'source_row', 'import_error'];
    const csv = rejectedRowsCsv(header, [
      { row: 2, state: 'failed', fields: ['P1', 'Q', '7', 'old'], errors: [{ row: 2, column: 'gender', message: 'bad' }] },
    ]);
    expect(csv).toBe('"patient_id","gender","source_row","import_error"\r\n"P1","Q","2","gender: bad"\r\n');
  });

  it('restoring undoes neutralising, and leaves other apostrophes alone', () => {
    for (const value of ['=1+2', '+44 20', '-3', '@x', '\tTab', '\rCR', 'plain', "'t Hooft", "'", '']) {
      expect(restoreNeutralizedFormula(neutralizeFormula(value))).toBe(value);
    }
    expect(restoreNeutralizedFormula("'x")).toBe("'x");
  });

  it('fixed and imported again, a rejected file lands the original values', async () => {
    const medplum = createLocalMedplum();
    const header = ['patient_id', 'first_name', 'last_name', 'birth_date', 'gender'];
    const rejected = rejectedRowsCsv(header, [
      { row: 2, state: 'failed', fields: ['=1+2', '+Ann', '-Lee', '1990-01-01', 'Q'], errors: [{ row: 2, column: 'gender', message: 'bad' }] },
      { row: 3, state: 'failed', fields: ['@P2', "'t Hooft", '\tTabbed', '2990-01-01', 'F'], errors: [] },
    ]);
    // The user fixes the cells that failed, in a text editor (the apostrophes stay).
    const fixed = rejected.replace('"Q"', '"F"').replace('2990-01-01', '1990-01-01');
    const { report } = await importCsv(medplum, csvFromText('fixed.csv', fixed));
    expect(report).toMatchObject({ rows: 2, created: 2, failed: 0 });
    const byId = (id: string): Patient | undefined =>
      medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === id);
    expect(byId('=1+2')?.name).toEqual([{ given: ['+Ann'], family: '-Lee' }]);
    expect(byId('@P2')?.name).toEqual([{ given: ["'t Hooft"], family: 'Tabbed' }]);
    expect(Papa.parse<string[]>(fixed.trim()).data[1][0]).toBe("'=1+2");
  });
});
