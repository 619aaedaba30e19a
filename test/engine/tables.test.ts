import { describe, expect, it } from 'vitest';
import { defaultTables, detectTable, matchesFileName, normalizeColumnName } from '../../src/lib/tables';
import type { TableDefinition } from '../../src/lib/tables/types';
import { resolveSettings } from '../../src/lib/settings';

describe('table detection', () => {
  it('recognises each guide table from its header', () => {
    const name = (cols: string[]): string | undefined => {
      const match = detectTable(cols, defaultTables());
      return 'table' in match ? match.table.name : undefined;
    };
    expect(name(['patient_id', 'first_name', 'last_name', 'birth_date', 'gender'])).toBe('patients');
    expect(name(['condition_id', 'condition_name', 'icd10_code'])).toBe('conditions');
    expect(name(['patient_condition_id', 'patient_id', 'condition_id', 'onset_date'])).toBe('patient_conditions');
    expect(name(['encounter_id', 'patient_id', 'date', 'type'])).toBe('encounters');
    expect(name(['encounter_id', 'patient_id', 'date', 'type', 'note', 'extra'])).toBe('encounters');
  });

  it('names the missing columns of the closest table', () => {
    const match = detectTable(['patient_id', 'first_name', 'last_name'], defaultTables());
    expect(match).toEqual({
      problem: "the header looks like the 'patients' table but is missing required column(s): birth_date, gender",
    });
  });

  it('takes the table that reads the most of the header; refuses a tie, naming the tables', () => {
    const both = ['patient_condition_id', 'patient_id', 'condition_id', 'onset_date', 'condition_name', 'icd10_code'];
    const best = detectTable(both, defaultTables());
    expect('table' in best && best.table.name).toBe('patient_conditions');
    const base = defaultTables()[0];
    const table = (name: string, columns: string[]): TableDefinition =>
      ({ ...base, name, columns: columns.map((c) => ({ name: c, required: true, description: '' })) }) as TableDefinition;
    const tie = detectTable(['a', 'b', 'c'], [table('conditions', ['a', 'b']), table('patient_conditions', ['a', 'c'])]);
    expect(tie).toEqual({
      problem:
        'the header fits more than one table equally (conditions, patient_conditions): ' +
        'name the table to import it as (--table on the command line, "table" in the bot input)',
    });
  });

  it('recognises a table with file-name patterns only in files so named', () => {
    const conditions = { ...(defaultTables().find((t) => t.name === 'conditions') as TableDefinition), fileNames: ['conditions*.csv', 'dx.csv'] };
    const header = ['condition_id', 'condition_name', 'icd10_code'];
    const name = (file: string): string | undefined => {
      const match = detectTable(header, [conditions], file);
      return 'table' in match ? match.table.name : undefined;
    };
    expect(name('conditions.csv')).toBe('conditions');
    expect(name('exports/2024/Conditions_2024-01.CSV')).toBe('conditions');
    expect(name('DX.csv')).toBe('conditions');
    expect(name('careplans.csv')).toBeUndefined();
    expect(matchesFileName('a+b (1).csv', ['a+b (?).csv'])).toBe(true);
  });

  it('says "looks like" only when at least two of a table\'s columns are there', () => {
    const one = detectTable(['patient_id', 'visit_reason'], defaultTables());
    expect('problem' in one && one.problem).toMatch(/^the header matches no known table \(.*patients: patient_id/);
    const two = detectTable(['encounter_id', 'patient_id'], defaultTables());
    expect(two).toEqual({
      problem: "the header looks like the 'encounters' table but is missing required column(s): date, type",
    });
  });

  it('normalises header names', () => {
    expect(normalizeColumnName(' Patient ID ')).toBe('patient_id');
    expect(normalizeColumnName('\uFEFFbirth-date')).toBe('birth_date');
  });
});

describe('settings', () => {
  it('reads secrets, lets input override them, and rejects bad values', () => {
    const secrets = { IDENTIFIER_BASE: { name: 'IDENTIFIER_BASE', valueString: 'https://ehr.example.com/' } };
    expect(resolveSettings({}, secrets).identifierBase).toBe('https://ehr.example.com');
    expect(resolveSettings({ identifierBase: 'urn:acme' }, secrets).identifierBase).toBe('urn:acme');
    expect(() => resolveSettings({ batchSize: 0 })).toThrow(/batchSize/);
    expect(() => resolveSettings({ identifierBase: 'not a uri' })).toThrow(/identifierBase/);
  });

  const BASE_RULE =
    "must be an absolute URI (http://, https:// or urn:) without spaces, control or invisible characters, ',', '|', '?' or '#'";

  it.each([
    'https://ehr.example.com/a|b',
    'https://ehr.example.com/a,b',
    'https://ehr.example.com/?x=1',
    'https://ehr.example.com/#frag',
    'https://ehr.example.com/a b',
    'https://ehr.example.com/a\u0007',
    'https://ehr.example.com/a\u200b',
    'ftp://ehr.example.com',
    'https://',
    'urn:',
    'ehr.example.com',
  ])('refuses identifierBase %j, naming the setting and the rule', (base) => {
    expect(() => resolveSettings({ identifierBase: base })).toThrow(`identifierBase ${BASE_RULE}`);
    const secrets = { IDENTIFIER_BASE: { name: 'IDENTIFIER_BASE', valueString: base } };
    expect(() => resolveSettings({}, secrets)).toThrow(`the IDENTIFIER_BASE secret ${BASE_RULE}`);
  });

  it('accepts identifier bases with paths, ports and escaped characters', () => {
    for (const base of ['https://ehr.example.com:8443/fhir/legacy', 'urn:oid:1.2.3.4', 'http://x.example/a%20b/$c']) {
      expect(resolveSettings({ identifierBase: base }).identifierBase).toBe(base);
    }
  });
});
