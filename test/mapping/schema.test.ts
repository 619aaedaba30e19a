import Ajv from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * schema/mapping.schema.json: it compiles (strict), every shipped mapping validates, and the
 * shapes format.ts rules out (two sources in one value, unknown members, bad names, ...) are refused.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const schema = JSON.parse(readFileSync(join(root, 'schema/mapping.schema.json'), 'utf8')) as object;
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile(schema);

const errorsOf = (doc: unknown): string[] =>
  validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);

function mappingFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.mapping.json'))
    .map((file) => join(dir, file))
    .sort();
}

/** A small valid mapping; the broken examples below each change one thing in a copy of it. */
function valid(): Record<string, any> {
  return {
    $schema: '../../schema/mapping.schema.json',
    name: 'encounters',
    description: 'one Encounter per row',
    columns: {
      Id: { required: true, description: 'encounter id' },
      START: { required: true },
      STOP: {},
      PATIENT: { required: true },
      CLASS: {},
      NOTE: {},
    },
    key: ['Id'],
    dependsOn: ['catalog'],
    defaults: { timeZone: 'UTC', dateFormats: ['YYYY-MM-DD'], dateTimeFormats: ['ISO', 'MM/DD/YYYY hh:mm'] },
    codes: {
      'encounter-class': {
        values: { ambulatory: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' } },
        default: 'AMB',
      },
      icd10: { conceptMap: '{$base}/ConceptMap/x-to-icd10', default: null },
      gender: { values: { M: 'male', F: 'female' } },
      conditions: { file: 'conditions.csv', code: 'condition_id', value: { code: 'icd10_code', display: 'condition_name' } },
      plain: { file: 'plain.csv', code: 'source', value: 'target' },
      stored: { codeSystem: '{$base}/CodeSystem/x' },
      labs: { conceptMap: 'https://example.org/fhir/ConceptMap/labs' },
    },
    skip: [
      { if: { column: 'CLASS', in: ['test', 'demo'] }, reason: 'test encounters are not imported' },
      { if: { all: [{ column: 'START', empty: true }, { not: { column: 'STOP', matches: '\\d+' } }] }, reason: 'no date' },
      { if: { any: [{ column: 'CLASS', equals: 'x' }, { column: 'NOTE', present: true }] }, reason: 'other' },
    ],
    resources: [
      {
        name: 'encounter',
        type: 'Encounter',
        identifier: { system: '{$base}/encounter-id', value: '{Id}' },
        write: 'merge',
        elements: {
          status: { fixed: 'finished' },
          class: { column: 'CLASS', map: 'encounter-class', required: true },
          'period.start': { column: 'START', formats: ['ISO'], timeZone: 'Europe/Berlin', notAfter: 'today' },
          'period.end': '{STOP}',
          subject: { reference: { mapping: 'patients', key: ['PATIENT'] } },
          serviceProvider: { reference: { type: 'Organization', identifier: { system: '{$base}/org-id', value: 'main' } } },
          'type[0].coding[0]': { fixed: { system: 'http://snomed.info/sct', code: '185349003' } },
          'type[0].text': { template: 'visit {CLASS}', maxLength: 200, when: { column: 'CLASS', present: true } },
          'length': { column: 'NOTE', unit: 'min', unitSystem: 'http://unitsofmeasure.org', unitCode: 'min', when: { column: 'NOTE', matches: '[0-9]+' } },
        },
      },
      {
        name: 'note',
        type: 'ClinicalImpression',
        identifier: { system: '{$base}/encounter-note-id', value: '{$key}' },
        write: 'replace',
        when: { column: 'NOTE', present: true },
        elements: {
          status: { fixed: 'completed' },
          encounter: { reference: { resource: 'encounter' } },
          subject: { reference: { mapping: 'patients', key: ['PATIENT'], resource: 'patient' } },
          summary: { column: 'NOTE' },
          'investigation[0].code.text': { column: 'NOTE' },
          'effectiveDateTime': { column: 'START', formats: ['DD.MM.YYYY hh:mm'] },
        },
      },
    ],
  };
}

describe('mapping JSON Schema', () => {
  it('is a valid draft-07 schema that compiles in strict mode', () => {
    expect(ajv.validateSchema(schema)).toBe(true);
    expect(typeof validate).toBe('function');
  });

  it('describes every member (editors show the descriptions as completion help)', () => {
    const missing: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (!node || typeof node !== 'object') return;
      const obj = node as Record<string, unknown>;
      const props = obj.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [name, prop] of Object.entries(props ?? {})) {
        if (typeof prop.description !== 'string') missing.push(`${path}/properties/${name}`);
      }
      for (const [k, v] of Object.entries(obj)) {
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}/${k}/${i}`));
        else walk(v, `${path}/${k}`);
      }
    };
    walk(schema, '#');
    expect(missing).toEqual([]);
  });

  it('accepts the complete example', () => {
    expect(errorsOf(valid())).toEqual([]);
  });

  const files = mappingFiles(join(root, 'profiles'));
  it('finds the shipped profiles', () => {
    expect(files.map((f) => relative(root, f))).toEqual(
      expect.arrayContaining(
        ['patients', 'organizations', 'providers', 'encounters', 'conditions', 'observations', 'medications', 'immunizations', 'allergies', 'procedures'].map(
          (name) => `profiles/synthea-csv/${name}.mapping.json`,
        ),
      ),
    );
  });
  it.each(files.map((f) => [relative(root, f), f]))('%s validates', (_name, file) => {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    expect(errorsOf(doc)).toEqual([]);
  });

  const broken: [string, (m: Record<string, any>) => void][] = [
    ['two sources in one value (column + template)', (m) => (m.resources[0].elements.status = { column: 'CLASS', template: '{CLASS}' })],
    ['two sources in one value (fixed + reference)', (m) => (m.resources[0].elements.subject.fixed = 'x')],
    ['a value without a source', (m) => (m.resources[0].elements.status = { required: true })],
    ['an unknown member at the top level', (m) => (m.table = 'encounters')],
    ['an unknown member in a resource', (m) => (m.resources[0].profile = 'x')],
    ['an unknown member in a value', (m) => (m.resources[0].elements.status.default = 'x')],
    ['an unknown member in a column', (m) => (m.columns.Id.type = 'string')],
    ['an unknown member in defaults', (m) => (m.defaults.locale = 'de')],
    ['an unknown member in a skip rule', (m) => (m.skip[0].when = m.skip[0].if)],
    ['an unknown member in a reference', (m) => (m.resources[0].elements.subject.reference.type = 'Patient')],
    ['an unknown write mode', (m) => (m.resources[0].write = 'upsert')],
    ['a mapping name with capitals', (m) => (m.name = 'Encounters')],
    ['a mapping name starting with a digit', (m) => (m.name = '1encounters')],
    ['a mapping name with a space', (m) => (m.name = 'my encounters')],
    ['a resource name with a dot', (m) => (m.resources[0].name = 'enc.main')],
    ['a code map name with capitals', (m) => (m.codes.Gender = m.codes.gender)],
    ['a map name with capitals', (m) => (m.resources[0].elements.class.map = 'Encounter-Class')],
    ['a dependsOn name with capitals', (m) => (m.dependsOn = ['Catalog'])],
    ['a code map with two sources (values + file)', (m) => (m.codes.gender.file = 'gender.csv')],
    ['a code map with two sources (codeSystem + conceptMap)', (m) => (m.codes.stored.conceptMap = 'https://x.org/cm')],
    ['a code map without a source', (m) => (m.codes.gender = { default: 'unknown' })],
    ['a dictionary file without its code column', (m) => delete m.codes.plain.code],
    ['a code column without a dictionary file', (m) => (m.codes.gender.code = 'source')],
    ['a column test with two tests', (m) => (m.skip[0].if = { column: 'CLASS', present: true, equals: 'x' })],
    ['a column test with no test', (m) => (m.skip[0].if = { column: 'CLASS' })],
    ['a column test without a column', (m) => (m.skip[0].if = { present: true })],
    ['present: false', (m) => (m.skip[0].if = { column: 'CLASS', present: false })],
    ['a condition mixing all and any', (m) => (m.skip[1].if = { all: [], any: [] })],
    ['an empty all', (m) => (m.skip[1].if = { all: [] })],
    ['a skip rule without a reason', (m) => delete m.skip[0].reason],
    ['no resources', (m) => (m.resources = [])],
    ['no name', (m) => delete m.name],
    ['no columns', (m) => delete m.columns],
    ['a resource without an identifier', (m) => delete m.resources[0].identifier],
    ['an identifier without a value', (m) => delete m.resources[0].identifier.value],
    ['a reference by mapping without a key', (m) => delete m.resources[0].elements.subject.reference.key],
    ['a reference by type without an identifier', (m) => (m.resources[0].elements.subject = { reference: { type: 'Patient' } })],
    ['a bad element path', (m) => (m.resources[0].elements['period..start'] = '{START}')],
    ['notAfter other than today', (m) => (m.resources[0].elements['period.start'].notAfter = 'tomorrow')],
    ['a Coding with an unknown member', (m) => (m.codes['encounter-class'].values.ambulatory.version = '1')],
    ['a Coding without a code', (m) => delete m.codes['encounter-class'].values.ambulatory.code],
    ['an empty code', (m) => (m.codes.gender.values.M = '')],
    ['a fixed value with options', (m) => (m.resources[0].elements.status.required = true)],
    ['a null fixed value', (m) => (m.resources[0].elements.status.fixed = null)],
    ['a reference with a code map', (m) => (m.resources[0].elements.subject.map = 'gender')],
    ['a resource without elements', (m) => (m.resources[0].elements = {})],
    ['more than eight resources', (m) => (m.resources = Array.from({ length: 9 }, (_, i) => ({ ...m.resources[0], name: `r${i}` })))],
    ['a unit system that is not a URI', (m) => (m.resources[0].elements.length.unitSystem = 'UCUM')],
  ];
  it.each(broken)('refuses %s', (_name, change) => {
    const m = valid();
    change(m);
    expect(errorsOf(m)).not.toEqual([]);
  });
});
