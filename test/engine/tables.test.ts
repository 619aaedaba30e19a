import { describe, expect, it } from 'vitest';
import { defaultTables, detectTable, normalizeColumnName } from '../../src/lib/tables';
import { resolveSettings } from '../../src/lib/settings';

describe('table detection', () => {
  it('recognises each guide table from its header', () => {
    const name = (cols: string[]): string | undefined => {
      const match = detectTable(cols, defaultTables);
      return 'table' in match ? match.table.name : undefined;
    };
    expect(name(['patient_id', 'first_name', 'last_name', 'birth_date', 'gender'])).toBe('patients');
    expect(name(['condition_id', 'condition_name', 'icd10_code'])).toBe('conditions');
    expect(name(['patient_condition_id', 'patient_id', 'condition_id', 'onset_date'])).toBe('patient_conditions');
    expect(name(['encounter_id', 'patient_id', 'date', 'type'])).toBe('encounters');
    expect(name(['encounter_id', 'patient_id', 'date', 'type', 'note', 'extra'])).toBe('encounters');
  });

  it('names the missing columns of the closest table', () => {
    const match = detectTable(['patient_id', 'first_name', 'last_name'], defaultTables);
    expect(match).toEqual({
      problem: "the header looks like the 'patients' table but is missing required column(s): birth_date, gender",
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
    expect(resolveSettings({ encounterClassMap: '{"Walk-In":"AMB"}' }).encounterClassMap['walk-in']).toBe('AMB');
    expect(() => resolveSettings({ batchSize: 0 })).toThrow(/batchSize/);
    expect(() => resolveSettings({ identifierBase: 'not a uri' })).toThrow(/identifierBase/);
  });
});
