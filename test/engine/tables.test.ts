import { describe, expect, it } from 'vitest';
import { defaultTables, detectTable, normalizeColumnName } from '../../src/lib/tables';
import { DEFAULT_ENCOUNTER_CLASS_MAP, ENCOUNTER_CLASS_DISPLAY, resolveSettings } from '../../src/lib/settings';

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

  it('refuses a header with every required column of two tables, naming both', () => {
    const match = detectTable(
      ['patient_condition_id', 'patient_id', 'condition_id', 'onset_date', 'condition_name', 'icd10_code'],
      defaultTables
    );
    expect(match).toEqual({
      problem:
        'the header has every required column of more than one table (conditions, patient_conditions): ' +
        'name the table to import it as (--table on the command line, "table" in the bot input)',
    });
  });

  it('says "looks like" only when at least two of a table\'s columns are there', () => {
    const one = detectTable(['patient_id', 'visit_reason'], defaultTables);
    expect('problem' in one && one.problem).toMatch(/^the header matches no known table \(patients: /);
    const two = detectTable(['encounter_id', 'patient_id'], defaultTables);
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
    expect(resolveSettings({ encounterClassMap: '{"Walk-In":"AMB"}' }).encounterClassMap['walk-in']).toBe('AMB');
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

  const CODES = 'AMB, EMER, FLD, HH, IMP, ACUTE, NONAC, OBSENC, PRENC, SS, VR';

  it('takes class-map codes from the v3 ActEncounterCode value set only, in any case', () => {
    const settings = resolveSettings({ encounterClassMap: { 'Walk-In': 'amb', rehab: 'NONAC' } });
    expect(settings.encounterClassMap).toMatchObject({ 'walk-in': 'AMB', rehab: 'NONAC', checkup: 'AMB' });
    expect(() => resolveSettings({ encounterClassMap: { 'walk-in': 'OUTPATIENT' } })).toThrow(
      `encounterClassMap: the class for type "walk-in" must be an HL7 v3 ActCode encounter code: one of ${CODES}`
    );
    const secrets = { ENCOUNTER_CLASS_MAP: { name: 'ENCOUNTER_CLASS_MAP', valueString: '{"visit":"X"}' } };
    expect(() => resolveSettings({}, secrets)).toThrow(
      `the ENCOUNTER_CLASS_MAP secret: the class for type "visit" must be an HL7 v3 ActCode encounter code: one of ${CODES}`
    );
    expect(() => resolveSettings({ encounterClassMap: '[1]' })).toThrow('encounterClassMap must be an object of type -> encounter class code');
    expect(() => resolveSettings({ encounterClassMap: 'nope' })).toThrow('encounterClassMap must be a JSON object of type -> encounter class code');
  });

  it('gives every class code a display', () => {
    expect(Object.keys(ENCOUNTER_CLASS_DISPLAY).sort()).toEqual(CODES.split(', ').sort());
    expect(Object.values(ENCOUNTER_CLASS_DISPLAY).every((display) => display.length > 0)).toBe(true);
    expect(Object.values(DEFAULT_ENCOUNTER_CLASS_MAP).every((code) => code in ENCOUNTER_CLASS_DISPLAY)).toBe(true);
  });
});
