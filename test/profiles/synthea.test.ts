import type { Encounter, Identifier, Reference, Resource } from '@medplum/fhirtypes';
import Papa from 'papaparse';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ImportReport, TableDefinition } from '../../src/lib';
import { csvFromText, defaultSettings, ImportFileError, importCsv, loadProfile, normalizeColumnName } from '../../src/lib';
import { keyValue } from '../../src/lib/engine/row-key';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { HAS_SYNTHEA, SYNTHEA_DIR } from '../helpers/synthea';

/**
 * The synthea-csv profile on a real Synthea export (27 patients), read where it is shared
 * (see test/helpers/synthea.ts; never copied into the
 * repository; the suite is skipped where it is absent): the ten mapped files
 * import parents first with no failed row, into as many resources of each type as the source
 * rows imply; a sample of resources matches its source rows field by field; a second import
 * changes nothing; and the files the profile does not map are refused, not taken for another table.
 */

const DATA_DIR = SYNTHEA_DIR;
const BASE = defaultSettings().identifierBase;
const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

/** Mapped file -> the resource types its rows write. */
const MAPPED: Record<string, string[]> = {
  organizations: ['Organization'],
  patients: ['Patient'],
  providers: ['Practitioner', 'PractitionerRole'],
  encounters: ['Encounter'],
  conditions: ['Condition'],
  observations: ['Observation'],
  medications: ['MedicationRequest'],
  immunizations: ['Immunization'],
  allergies: ['AllergyIntolerance'],
  procedures: ['Procedure'],
};
const NOT_MAPPED = ['careplans', 'claims', 'claims_transactions', 'devices', 'imaging_studies', 'payer_transitions', 'payers', 'supplies'];
/** The observations mapping's skip rule (profiles/synthea-csv/README.md, "Skipped rows"). */
const SIMULATION_METRICS = new Set(['QALY', 'DALY', 'QOLS']);

type Row = Record<string, string>;

function fileText(name: string): string {
  return readFileSync(join(DATA_DIR, `${name}.csv`), 'utf8');
}

/** A source file's rows, by normalised column name (as the mappings name them), cells trimmed. */
function sourceRows(name: string): Row[] {
  const parsed = Papa.parse<Row>(fileText(name), {
    header: true,
    skipEmptyLines: 'greedy',
    transformHeader: normalizeColumnName,
    transform: (value) => value.trim(),
  });
  expect(parsed.errors).toEqual([]);
  return parsed.data;
}

interface Expected {
  /** Rows written, by their identifier value (the row key). */
  written: Map<string, Row>;
  skipped: number;
  rows: number;
}

/**
 * What a file's rows imply under its table's key: rows skipped by the skip rule, exact repeats of
 * an earlier row skipped, and one resource per distinct key. A key repeated with other content
 * would fail a row: the export has none, which this checks.
 */
function expectedRows(name: string, table: TableDefinition): Expected {
  const rows = sourceRows(name);
  const declared = table.columns.map((c) => c.name);
  const written = new Map<string, Row>();
  const seen = new Map<string, string>();
  let skipped = 0;
  for (const row of rows) {
    if (name === 'observations' && SIMULATION_METRICS.has(row.code)) {
      skipped++;
      continue;
    }
    const keyCells = table.key.map((c) => row[c] ?? '');
    const content = JSON.stringify(declared.map((c) => row[c] ?? ''));
    const folded = keyCells.join('\u001f').toLowerCase();
    const earlier = seen.get(folded);
    if (earlier !== undefined) {
      expect(earlier, `${name}.csv repeats a key with other content`).toBe(content);
      skipped++;
      continue;
    }
    seen.set(folded, content);
    written.set(keyValue(keyCells, table.key.length === 1), row);
  }
  return { written, skipped, rows: rows.length };
}

const identifierOf = (resource: Resource): Identifier | undefined => (resource as { identifier?: Identifier[] }).identifier?.[0];

/** A stored resource without what the server manages (id, meta) and the displays it adds to resolved references. */
function withoutServerFields(resource: Resource): unknown {
  const { id: _id, meta: _meta, ...rest } = resource as Resource & { meta?: unknown };
  return JSON.parse(JSON.stringify(rest), (_key, value: unknown) =>
    value && typeof value === 'object' && typeof (value as Reference).reference === 'string' ? { reference: (value as Reference).reference } : value
  );
}

describe.skipIf(!HAS_SYNTHEA)('the synthea-csv profile on a real Synthea export (27 patients)', () => {
  const tables = loadProfile('synthea-csv').tables;
  const tableOf = (name: string): TableDefinition => {
    const table = tables.find((t) => t.name === name);
    if (!table) {
      throw new Error(`the synthea-csv profile has no table ${name}`);
    }
    return table;
  };
  const medplum: LocalMedplum = createLocalMedplum();
  const firstRun = new Map<string, ImportReport>();
  const expected = new Map<string, Expected>();

  /** The stored resource of a type with this identifier value (exactly one). */
  const stored = <T extends Resource>(type: T['resourceType'], value: string): T => {
    const found = medplum.allResources(type as 'Patient').filter((r) => identifierOf(r)?.value === value);
    expect(found, `${type} ${value}`).toHaveLength(1);
    return found[0] as unknown as T;
  };
  const ref = (type: string, value: string): { reference: string } => ({ reference: `${type}/${stored(type as 'Patient', value).id}` });
  /** A clinical row's sample: the first row written that satisfies `test`. */
  const sample = (file: string, test: (row: Row) => boolean): [string, Row] => {
    const found = [...(expected.get(file)?.written ?? [])].find(([, row]) => test(row));
    if (!found) {
      throw new Error(`${file}.csv has no row for this sample`);
    }
    return found;
  };

  beforeAll(async () => {
    // Parents first: the profile's table order.
    expect(tables.map((t) => t.name)).toEqual([
      'organizations',
      'patients',
      'providers',
      'encounters',
      'allergies',
      'conditions',
      'immunizations',
      'medications',
      'observations',
      'procedures',
    ]);
    for (const table of tables) {
      expected.set(table.name, expectedRows(table.name, table));
      const { report } = await importCsv(medplum, csvFromText(`${table.name}.csv`, fileText(table.name)), { tables });
      firstRun.set(table.name, report);
    }
  }, 120_000);

  it('imports every row of the ten mapped files: none failed, each created or skipped with its reason', () => {
    for (const table of tables) {
      const report = firstRun.get(table.name) as ImportReport;
      const { rows, skipped, written } = expected.get(table.name) as Expected;
      expect(report.table).toBe(table.name);
      expect(report.errors).toEqual([]);
      expect([report.rows, report.created, report.updated, report.unchanged, report.failed, report.skipped], table.name).toEqual([
        rows,
        written.size,
        0,
        0,
        0,
        skipped,
      ]);
      expect(report.skips).toHaveLength(skipped);
      for (const skip of report.skips) {
        expect(skip.reason).toMatch(table.name === 'observations' ? /^Synthea simulation metric \(QALY, DALY or QOLS\)|^exact duplicate of row \d+$/ : /^exact duplicate of row \d+$/);
      }
    }
    // The export's own shape, as the profile README describes it.
    expect(expected.get('observations')?.skipped).toBe(75);
  });

  it('writes as many resources of each type as the source rows imply', () => {
    const counts: Record<string, number> = {};
    for (const [file, types] of Object.entries(MAPPED)) {
      const { written } = expected.get(file) as Expected;
      for (const type of types) {
        counts[type] =
          type === 'PractitionerRole' ? [...written.values()].filter((row) => row.organization || row.speciality).length : written.size;
      }
    }
    const stored = Object.fromEntries(Object.keys(counts).map((type) => [type, medplum.allResources(type as 'Patient').length]));
    expect(stored).toEqual(counts);
    expect(counts).toMatchObject({ Patient: 27, Organization: 63, Practitioner: 166, Encounter: 604, Observation: 915 });
  });

  it('a patient, an organization, a practitioner and its role match their source rows field by field', () => {
    // A patient with a maiden name, a marital status and an SSN: every mapped column in use.
    const [, patientRow] = sample('patients', (r) => Boolean(r.maiden && r.marital && r.ssn && r.prefix));
    const extra = [
      ['ssn', 'SS', "Social Security number", 'http://hl7.org/fhir/sid/us-ssn'],
      ['drivers', 'DL', "Driver's license number", `${BASE}/synthea/drivers-license`],
      ['passport', 'PPN', 'Passport number', `${BASE}/synthea/passport`],
    ].filter(([column]) => patientRow[column]);
    const marital: Record<string, string> = { M: 'Married', S: 'Never Married', D: 'Divorced', W: 'Widowed' };
    expect(withoutServerFields(stored('Patient', patientRow.id))).toEqual({
      resourceType: 'Patient',
      identifier: [
        { system: `${BASE}/synthea/patient-id`, value: patientRow.id },
        ...extra.map(([column, code, display, system]) => ({
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code, display }] },
          system,
          value: patientRow[column],
        })),
      ],
      name: [
        {
          use: 'official',
          family: patientRow.last,
          given: [patientRow.first],
          prefix: [patientRow.prefix],
          ...(patientRow.suffix ? { suffix: [patientRow.suffix] } : {}),
        },
        { use: 'maiden', family: patientRow.maiden, given: [patientRow.first] },
      ],
      gender: { M: 'male', F: 'female' }[patientRow.gender],
      birthDate: patientRow.birthdate,
      ...(patientRow.deathdate ? { deceasedDateTime: patientRow.deathdate } : {}),
      maritalStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: patientRow.marital, display: marital[patientRow.marital] }],
        text: marital[patientRow.marital],
      },
      address: [
        {
          use: 'home',
          line: [patientRow.address],
          city: patientRow.city,
          district: patientRow.county,
          state: patientRow.state,
          ...(patientRow.zip ? { postalCode: patientRow.zip } : {}),
        },
      ],
    });
    // A patient who died: deceasedDateTime is the DEATHDATE as written.
    const [, dead] = sample('patients', (r) => Boolean(r.deathdate));
    expect(stored('Patient', dead.id)).toMatchObject({ deceasedDateTime: dead.deathdate, birthDate: dead.birthdate });

    const [, orgRow] = sample('organizations', (r) => Boolean(r.phone && r.zip));
    expect(withoutServerFields(stored('Organization', orgRow.id))).toEqual({
      resourceType: 'Organization',
      identifier: [{ system: `${BASE}/synthea/organization-id`, value: orgRow.id }],
      active: true,
      type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov', display: 'Healthcare Provider' }] }],
      name: orgRow.name,
      telecom: [{ system: 'phone', use: 'work', value: orgRow.phone }],
      address: [{ use: 'work', line: [orgRow.address], city: orgRow.city, state: orgRow.state, postalCode: orgRow.zip }],
    });
    // Without a phone: no telecom at all, not an empty one.
    const [, noPhone] = sample('organizations', (r) => !r.phone);
    expect(stored('Organization', noPhone.id)).not.toHaveProperty('telecom');

    const [, providerRow] = sample('providers', (r) => r.speciality === 'GENERAL PRACTICE' && Boolean(r.zip));
    const practitioner = stored('Practitioner', providerRow.id);
    expect(withoutServerFields(practitioner)).toEqual({
      resourceType: 'Practitioner',
      identifier: [{ system: `${BASE}/synthea/provider-id`, value: providerRow.id }],
      active: true,
      name: [{ text: providerRow.name }],
      gender: { M: 'male', F: 'female' }[providerRow.gender],
      address: [{ use: 'work', line: [providerRow.address], city: providerRow.city, state: providerRow.state, postalCode: providerRow.zip }],
    });
    expect(withoutServerFields(stored('PractitionerRole', providerRow.id))).toEqual({
      resourceType: 'PractitionerRole',
      identifier: [{ system: `${BASE}/synthea/provider-role-id`, value: providerRow.id }],
      active: true,
      practitioner: { reference: `Practitioner/${practitioner.id}` },
      organization: ref('Organization', providerRow.organization),
      specialty: [{ coding: [{ system: 'http://nucc.org/provider-taxonomy', code: '208D00000X', display: 'General Practice' }], text: 'GENERAL PRACTICE' }],
    });
  });

  it('every encounter refers to the Patient, Practitioner and Organization of its row; one matches its row field by field', () => {
    const { written } = expected.get('encounters') as Expected;
    const byIdentifier = (type: string): Map<string, string> =>
      new Map(medplum.allResources(type as 'Patient').map((r) => [identifierOf(r)?.value as string, `${type}/${r.id}`]));
    const patients = byIdentifier('Patient');
    const practitioners = byIdentifier('Practitioner');
    const organizations = byIdentifier('Organization');
    const encounters = medplum.allResources('Encounter');
    expect(encounters).toHaveLength(written.size);
    for (const encounter of encounters as Encounter[]) {
      const row = written.get(identifierOf(encounter)?.value as string) as Row;
      expect(encounter.subject?.reference).toBe(patients.get(row.patient));
      expect(encounter.participant?.[0]?.individual?.reference).toBe(practitioners.get(row.provider));
      expect(encounter.serviceProvider?.reference).toBe(organizations.get(row.organization));
      expect(encounter.subject?.reference).toMatch(/^Patient\/[0-9a-f-]{36}$/);
    }

    const [id, row] = sample('encounters', (r) => r.encounterclass === 'ambulatory' && Boolean(r.reasoncode && r.stop));
    expect(withoutServerFields(stored('Encounter', id))).toEqual({
      resourceType: 'Encounter',
      identifier: [{ system: `${BASE}/synthea/encounter-id`, value: row.id }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
      type: [{ coding: [{ system: SNOMED, code: row.code, display: row.description }], text: row.description }],
      subject: ref('Patient', row.patient),
      participant: [
        {
          type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PPRF', display: 'primary performer' }] }],
          individual: ref('Practitioner', row.provider),
        },
      ],
      period: { start: row.start, end: row.stop },
      reasonCode: [{ coding: [{ system: SNOMED, code: row.reasoncode, display: row.reasondescription }], text: row.reasondescription }],
      serviceProvider: ref('Organization', row.organization),
    });
  });

  it('a condition, observations (a number with its UCUM unit, a text, a smoking status) match their rows field by field', () => {
    const [conditionId, c] = sample('conditions', (r) => Boolean(r.stop));
    expect(withoutServerFields(stored('Condition', conditionId))).toEqual({
      resourceType: 'Condition',
      identifier: [{ system: `${BASE}/synthea/condition-id`, value: conditionId }],
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved', display: 'Resolved' }] },
      verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed', display: 'Confirmed' }] },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }] }],
      code: { coding: [{ system: SNOMED, code: c.code, display: c.description }], text: c.description },
      subject: ref('Patient', c.patient),
      encounter: ref('Encounter', c.encounter),
      onsetDateTime: c.start,
      abatementDateTime: c.stop,
      recordedDate: c.start,
    });
    const [activeId] = sample('conditions', (r) => !r.stop);
    expect(stored('Condition', activeId)).toMatchObject({ clinicalStatus: { coding: [{ code: 'active' }] } });
    expect(stored('Condition', activeId)).not.toHaveProperty('abatementDateTime');

    const observation = (id: string, o: Row, value: Record<string, unknown>, category: string): unknown => ({
      resourceType: 'Observation',
      identifier: [{ system: `${BASE}/synthea/observation-id`, value: id }],
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: o.category, display: category }] }],
      code: { coding: [{ system: LOINC, code: o.code, display: o.description }], text: o.description },
      subject: ref('Patient', o.patient),
      encounter: ref('Encounter', o.encounter),
      effectiveDateTime: o.date,
      issued: o.date,
      ...value,
    });
    const [heightId, height] = sample('observations', (r) => r.code === '8302-2' && r.type === 'numeric');
    expect(withoutServerFields(stored('Observation', heightId))).toEqual(
      observation(heightId, height, { valueQuantity: { value: Number(height.value), unit: height.units, system: UCUM, code: height.units } }, 'Vital Signs')
    );
    expect(height.units).toBe('cm');
    // A laboratory value with a UCUM unit holding brackets or powers of ten, when the export has one.
    const [labId, lab] = sample('observations', (r) => r.category === 'laboratory' && r.type === 'numeric' && Boolean(r.units));
    expect(stored('Observation', labId)).toMatchObject({ valueQuantity: { value: Number(lab.value), unit: lab.units, system: UCUM, code: lab.units } });

    const [textId, text] = sample('observations', (r) => r.type === 'text' && r.category === 'survey' && r.code !== '72166-2' && !r.units);
    expect(withoutServerFields(stored('Observation', textId))).toEqual(observation(textId, text, { valueString: text.value }, 'Survey'));
    const [smokingId, smoking] = sample('observations', (r) => r.code === '72166-2' && r.value === 'Never smoker');
    expect(stored('Observation', smokingId)).toMatchObject({
      valueCodeableConcept: { coding: [{ system: SNOMED, code: '266919005', display: 'Never smoker' }], text: smoking.value },
    });
    expect(stored('Observation', smokingId)).not.toHaveProperty('valueString');
  });

  it('a medication request, an immunization, an allergy with two reactions and a procedure match their rows field by field', () => {
    const [medicationId, m] = sample('medications', (r) => Boolean(r.stop && r.reasoncode));
    expect(withoutServerFields(stored('MedicationRequest', medicationId))).toEqual({
      resourceType: 'MedicationRequest',
      identifier: [{ system: `${BASE}/synthea/medication-request-id`, value: medicationId }],
      status: 'stopped',
      intent: 'order',
      medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: m.code, display: m.description }], text: m.description },
      subject: ref('Patient', m.patient),
      encounter: ref('Encounter', m.encounter),
      authoredOn: m.start,
      dispenseRequest: { validityPeriod: { start: m.start, end: m.stop } },
      reasonCode: [{ coding: [{ system: SNOMED, code: m.reasoncode, display: m.reasondescription }], text: m.reasondescription }],
    });
    const [ongoingId] = sample('medications', (r) => !r.stop);
    expect(stored('MedicationRequest', ongoingId)).toMatchObject({ status: 'active' });

    // CVX codes keep their leading zero ('08').
    const [immunizationId, i] = sample('immunizations', (r) => r.code.startsWith('0'));
    expect(withoutServerFields(stored('Immunization', immunizationId))).toEqual({
      resourceType: 'Immunization',
      identifier: [{ system: `${BASE}/synthea/immunization-id`, value: immunizationId }],
      status: 'completed',
      vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: i.code, display: i.description }], text: i.description },
      patient: ref('Patient', i.patient),
      encounter: ref('Encounter', i.encounter),
      occurrenceDateTime: i.date,
      primarySource: true,
    });

    const [allergyId, a] = sample('allergies', (r) => Boolean(r.reaction1 && r.reaction2 && r.severity1 && r.severity2));
    const reaction = (n: 1 | 2): unknown => ({
      manifestation: [{ coding: [{ system: SNOMED, code: a[`reaction${n}`], display: a[`description${n}`] }], text: a[`description${n}`] }],
      severity: a[`severity${n}`].toLowerCase(),
    });
    expect(withoutServerFields(stored('AllergyIntolerance', allergyId))).toEqual({
      resourceType: 'AllergyIntolerance',
      identifier: [{ system: `${BASE}/synthea/allergy-id`, value: allergyId }],
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active', display: 'Active' }] },
      verificationStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed', display: 'Confirmed' }],
      },
      type: a.type,
      category: [a.category],
      code: {
        coding: [{ system: a.system === 'RxNorm' ? 'http://www.nlm.nih.gov/research/umls/rxnorm' : SNOMED, code: a.code, display: a.description }],
        text: a.description,
      },
      patient: ref('Patient', a.patient),
      encounter: ref('Encounter', a.encounter),
      onsetDateTime: a.start,
      recordedDate: a.start,
      reaction: [reaction(1), reaction(2)],
    });
    // An allergy without reactions has none (no empty reaction left behind).
    const [bareId] = sample('allergies', (r) => !r.reaction1 && !r.reaction2);
    expect(stored('AllergyIntolerance', bareId)).not.toHaveProperty('reaction');

    const [procedureId, p] = sample('procedures', (r) => Boolean(r.reasoncode));
    expect(withoutServerFields(stored('Procedure', procedureId))).toEqual({
      resourceType: 'Procedure',
      identifier: [{ system: `${BASE}/synthea/procedure-id`, value: procedureId }],
      status: 'completed',
      code: { coding: [{ system: SNOMED, code: p.code, display: p.description }], text: p.description },
      subject: ref('Patient', p.patient),
      encounter: ref('Encounter', p.encounter),
      performedPeriod: { start: p.start, end: p.stop },
      reasonCode: [{ coding: [{ system: SNOMED, code: p.reasoncode, display: p.reasondescription }], text: p.reasondescription }],
    });
  });

  it('a second import of the ten files changes nothing: every row unchanged or skipped as before', async () => {
    const before = medplum.stats.requests;
    for (const table of tables) {
      const { report } = await importCsv(medplum, csvFromText(`${table.name}.csv`, fileText(table.name)), { tables });
      const first = firstRun.get(table.name) as ImportReport;
      expect([report.rows, report.created, report.updated, report.unchanged, report.failed, report.skipped], table.name).toEqual([
        first.rows,
        0,
        0,
        first.created,
        0,
        first.skipped,
      ]);
      expect(report.skips).toEqual(first.skips);
    }
    expect(medplum.stats.requests).toBeGreaterThan(before);
  }, 60_000);

  it('refuses the files it does not map, naming why, instead of importing them as another table', async () => {
    const count = (): number => Object.values(MAPPED).flat().reduce((n, type) => n + medplum.allResources(type as 'Patient').length, 0);
    const before = count();
    for (const name of NOT_MAPPED) {
      const outcome = importCsv(medplum, csvFromText(`${name}.csv`, fileText(name)), { tables });
      await expect(outcome, name).rejects.toBeInstanceOf(ImportFileError);
      await expect(outcome, name).rejects.toThrow(
        new RegExp(`^${name}\\.csv: the header (matches no known table \\(|looks like the '[a-z]+' table but is missing required column\\(s\\): [a-z_, ]+$)`)
      );
    }
    expect(count()).toBe(before);
    // careplans.csv and devices.csv have every column of conditions.csv: the conditions mapping
    // takes only files named conditions*.csv.
    expect(tableOf('conditions').fileNames).toEqual(['conditions*.csv']);
    await expect(importCsv(medplum, csvFromText('careplans.csv', fileText('careplans')), { tables, dryRun: true })).rejects.toThrow(
      "careplans.csv: the header looks like the 'encounters' table but is missing required column(s): encounterclass"
    );
  });
});
