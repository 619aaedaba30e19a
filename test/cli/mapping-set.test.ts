import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseMappingSet } from '../../src/cli/mapping-set';
import { MappingSetError } from '../../src/lib';
import type { MappingProblem } from '../../src/lib';
import { readMappingFiles } from '../../src/lib/mapping/folder';

const LAB = join(__dirname, 'fixtures', 'lab');

/** A mapping of one table with one Patient per row, keyed by `id`. */
function patientsMapping(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    name,
    columns: { id: { required: true }, family: { required: true } },
    key: ['id'],
    resources: [
      {
        type: 'Patient',
        identifier: { system: `{$base}/${name}-id`, value: '{id}' },
        elements: { 'name[0].family': { column: 'family' } },
      },
    ],
    ...extra,
  });
}

function problemsOf(run: () => unknown): MappingProblem[] {
  try {
    run();
  } catch (err) {
    if (err instanceof MappingSetError) {
      return [...err.problems];
    }
    throw err;
  }
  throw new Error('expected a MappingSetError');
}

describe('the mapping set of the command line', () => {
  it('is the guide profile by default, or the named profile', () => {
    expect(chooseMappingSet({ mappings: [] }).set.tables.map((t) => t.name).sort()).toEqual([
      'conditions',
      'encounters',
      'patient_conditions',
      'patients',
    ]);
    const synthea = chooseMappingSet({ profile: 'synthea-csv', mappings: [] });
    expect(synthea.description).toBe('profile synthea-csv');
    expect(synthea.set.tables.map((t) => t.name)).toContain('observations');
  });

  it('reads a folder: its mappings and the dictionaries they name, not its data files', () => {
    const files = readMappingFiles(LAB);
    expect(files.problems).toEqual([]);
    expect(files.mappings.map((f) => f.name)).toEqual([join(LAB, 'lab-results.mapping.json')]);
    expect(files.dictionaries.map((f) => f.name)).toEqual(['lab-tests.csv']); // not lab-results.csv
    const { set } = chooseMappingSet({ profile: 'guide', mappings: [LAB] });
    expect(set.tables.map((t) => t.name)).toEqual(expect.arrayContaining(['patients', 'conditions', 'lab_results']));
  });

  it('a single mapping file brings the dictionaries of its folder, not the folder\'s other mappings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mapping-set-'));
    cpSync(LAB, dir, { recursive: true });
    writeFileSync(join(dir, 'other.mapping.json'), '{ not json');
    const file = join(dir, 'lab-results.mapping.json');
    const { set, description } = chooseMappingSet({ profile: 'guide', mappings: [file] });
    expect(description).toBe(`profile guide + ${file}`);
    expect(set.tables.map((t) => t.name)).toContain('lab_results');
    // The whole folder brings the broken mapping too.
    expect(problemsOf(() => chooseMappingSet({ profile: 'guide', mappings: [dir] }))).toEqual([
      expect.objectContaining({ file: join(dir, 'other.mapping.json'), at: '', message: expect.stringContaining('not valid JSON') }),
    ]);
  });

  it("with --profile, a given mapping replaces the profile's mapping or built-in table of the same name", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mapping-set-'));
    writeFileSync(join(dir, 'people.mapping.json'), patientsMapping('patients'));
    writeFileSync(join(dir, 'catalog.mapping.json'), patientsMapping('conditions'));
    const { set } = chooseMappingSet({ profile: 'guide', mappings: [dir] });
    const patients = set.tables.find((t) => t.name === 'patients');
    expect(patients?.columns.map((c) => c.name)).toEqual(['id', 'family']);
    const conditions = set.tables.find((t) => t.name === 'conditions');
    expect(conditions?.kind).toBe('rows'); // the given mapping, not the built-in catalog (an aggregate)
    expect(set.tables.map((t) => t.name).sort()).toEqual(['conditions', 'encounters', 'patient_conditions', 'patients']);

    // Without --profile, only the given mappings.
    expect(chooseMappingSet({ mappings: [dir] }).set.tables.map((t) => t.name).sort()).toEqual(['conditions', 'patients']);
  });

  it('names every problem by the path of its file and a JSON pointer; several folders, profile.json merged', () => {
    const a = mkdtempSync(join(tmpdir(), 'mapping-set-'));
    const b = join(a, 'b');
    mkdirSync(b);
    writeFileSync(join(a, 'one.mapping.json'), patientsMapping('one', { codes: { x: { file: 'dict.csv', code: 'code', value: 'value' } } }));
    writeFileSync(join(a, 'dict.csv'), 'code,value\nA,1\n');
    writeFileSync(join(b, 'two.mapping.json'), patientsMapping('two', { codes: { y: { file: 'dict.csv', code: 'code', value: 'value' } } }));
    writeFileSync(join(b, 'dict.csv'), 'code,value\nA,2\n');
    writeFileSync(join(b, 'profile.json'), JSON.stringify({ tables: ['conditions', 'nope'] }));
    expect(problemsOf(() => chooseMappingSet({ mappings: [a, b] }))).toEqual([
      { file: join(b, 'dict.csv'), at: '', message: expect.stringContaining(`a different dictionary of the same name is ${join(a, 'dict.csv')}`) },
      { file: join(b, 'profile.json'), at: '/tables/1', message: "no built-in table named 'nope' (there are conditions)" },
    ]);

    writeFileSync(join(b, 'dict.csv'), 'code,value\nA,1\n');
    writeFileSync(join(b, 'profile.json'), JSON.stringify({ tables: ['conditions'] }));
    expect(chooseMappingSet({ mappings: [a, b] }).set.tables.map((t) => t.name).sort()).toEqual(['conditions', 'one', 'two']);

    expect(problemsOf(() => chooseMappingSet({ mappings: [join(a, 'missing')] }))).toEqual([
      { file: join(a, 'missing'), at: '', message: 'no such file or folder' },
    ]);
    expect(problemsOf(() => chooseMappingSet({ mappings: [join(a, 'dict.csv')] }))).toEqual([
      { file: join(a, 'dict.csv'), at: '', message: 'not a mapping: give a *.mapping.json file or a folder of them' },
    ]);
  });
});
