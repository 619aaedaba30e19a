// The whole 27-patient Synthea export through the built bot (dist/import-csv.js, run as Medplum's
// vmcontext runtime runs it), with the synthea-csv mappings stored in the project by the setup code
// (not the bot's built-in default): uploads + cron sweeps, under the access policy setup derived
// from those mappings, enforced in front of the local Medplum.
import type { WithId } from '@medplum/core';
import type {
  Bot,
  Encounter,
  Identifier,
  Library,
  MedicationRequest,
  Observation,
  Organization,
  Patient,
  Practitioner,
  Project,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Papa from 'papaparse';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import type { SetupResult } from '../../src/setup/setup-project';
import { setupProject } from '../../src/setup/setup-project';
import { botRun, taskReportOf } from '../helpers/bot-events';
import { HAS_SYNTHEA, SYNTHEA_DIR } from '../helpers/synthea';
import { importTasks, uploadCsv } from '../helpers/uploads';
import type { PolicyEnforcer } from './access-policy-enforcer';
import { enforceAccessPolicy } from './access-policy-enforcer';

/** Read where it is (never copied into the repository); the suite is skipped where it is missing. */
const EXPORT_DIR = SYNTHEA_DIR;
const BASE = 'https://synthea.example.org/fhir';

/** The ten files the profile maps, given in an order that puts children before their parents. */
const FILES = [
  'allergies',
  'conditions',
  'encounters',
  'immunizations',
  'medications',
  'observations',
  'organizations',
  'patients',
  'procedures',
  'providers',
] as const;

const SECRETS = { TIME_BUDGET_SECONDS: '120', CONTINUE_IMPORTS: 'false', IDENTIFIER_BASE: BASE };

type Row = Record<string, string>;

function rows(file: string): Row[] {
  return Papa.parse<Row>(readFileSync(join(EXPORT_DIR, `${file}.csv`), 'utf8'), { header: true, skipEmptyLines: true }).data;
}

function identifierValue(resource: { identifier?: Identifier[] }, system: string): string | undefined {
  return resource.identifier?.find((i) => i.system === system)?.value;
}

describe.skipIf(!HAS_SYNTHEA)('the Synthea export through the built bot, with its mappings stored in the project', () => {
  let medplum: LocalMedplum;
  let setup: SetupResult;
  let bot: WithId<Bot>;
  let enforcer: PolicyEnforcer;
  const timings: Record<string, number> = {};

  /** Runs cron sweeps (as Medplum's schedule would) until no upload is pending; returns how many ran. */
  async function sweepUntilDone(): Promise<number> {
    for (let sweep = 1; sweep <= 8; sweep++) {
      enforcer.enabled = true;
      try {
        const { result } = await botRun(medplum, bot, { secrets: SECRETS, bot: `Bot/${bot.id}` });
        if ((result as { pending: number }).pending === 0) {
          return sweep;
        }
      } finally {
        enforcer.enabled = false;
      }
    }
    throw new Error('uploads still pending after 8 sweeps');
  }

  async function uploadAll(): Promise<void> {
    for (const file of FILES) {
      await uploadCsv(medplum, `${file}.csv`, readFileSync(join(EXPORT_DIR, `${file}.csv`), 'utf8'));
    }
  }

  function reportsByTable(tasks: Task[]): Record<string, ImportReport> {
    return Object.fromEntries(
      tasks.map((t) => {
        const report = taskReportOf(t) as ImportReport;
        return [report.table, report];
      })
    );
  }

  beforeAll(async () => {
    medplum = createLocalMedplum();
    enforcer = enforceAccessPolicy(medplum);
    const project = await medplum.createResource<Project>({ resourceType: 'Project', name: 'Synthea', features: ['bots', 'cron', 'transaction-bundles'] });
    let started = Date.now();
    setup = await setupProject(medplum, { projectId: project.id, identifierBase: BASE, mappings: { profile: 'synthea-csv' } });
    timings.setup = Date.now() - started;
    bot = await medplum.readResource('Bot', setup.botId);
    enforcer.policy = await medplum.readResource('AccessPolicy', setup.accessPolicyId);

    await uploadAll();
    started = Date.now();
    timings.sweepsFirst = await sweepUntilDone();
    timings.firstImport = Date.now() - started;
  }, 120_000);

  it('setup stored one Library per mapping, each holding its mapping as a Binary', () => {
    const libraries = medplum.allResources<Library>('Library');
    expect(libraries.map((l) => l.name).sort()).toEqual([...FILES].sort());
    for (const library of libraries) {
      expect(library).toMatchObject({
        status: 'active',
        identifier: [{ system: 'urn:medplum-csv-import:mapping', value: library.name }],
        content: [{ title: `${library.name}.mapping.json`, contentType: 'application/json', url: expect.stringMatching(/^Binary\/[\w-]+$/) }],
      });
    }
    expect(Object.keys(setup.mappings?.libraries ?? {}).sort()).toEqual([...FILES].sort());
  });

  it('imports every file with 0 failed rows, parents first, under the derived access policy', () => {
    const tasks = importTasks(medplum);
    expect(tasks).toHaveLength(10);
    expect(tasks.map((t) => t.status)).toEqual(tasks.map(() => 'completed'));
    const reports = reportsByTable(tasks);
    expect(Object.keys(reports).sort()).toEqual([...FILES].sort());
    for (const file of FILES) {
      const report = reports[file];
      expect(report.failed, `${file}: ${JSON.stringify(report.errors.slice(0, 3))}`).toBe(0);
      expect(report.rows, file).toBe(rows(file).length);
      expect(report.created + report.skipped, file).toBe(report.rows);
    }
    // Only the simulator's QALY, DALY and QOLS rows are skipped.
    const metrics = rows('observations').filter((r) => ['QALY', 'DALY', 'QOLS'].includes(r.CODE)).length;
    expect(reports.observations.skipped).toBe(metrics);
    expect(enforcer.denied).toEqual([]);
    // The bot read its mappings (Library search, Binary reads) and wrote only what they write.
    expect(enforcer.seen).toContain('Library:search');
    expect(enforcer.seen).toContain('Binary:read');
    expect(timings.sweepsFirst).toBeLessThanOrEqual(3);
  });

  it('resource counts per type match the export', () => {
    const count = (type: string): number => medplum.allResources(type as 'Patient').length;
    const metrics = rows('observations').filter((r) => ['QALY', 'DALY', 'QOLS'].includes(r.CODE)).length;
    expect({
      Organization: count('Organization'),
      Patient: count('Patient'),
      Practitioner: count('Practitioner'),
      PractitionerRole: count('PractitionerRole'),
      Encounter: count('Encounter'),
      Condition: count('Condition'),
      Observation: count('Observation'),
      MedicationRequest: count('MedicationRequest'),
      Immunization: count('Immunization'),
      AllergyIntolerance: count('AllergyIntolerance'),
      Procedure: count('Procedure'),
    }).toEqual({
      Organization: rows('organizations').length,
      Patient: rows('patients').length,
      Practitioner: rows('providers').length,
      PractitionerRole: rows('providers').length,
      Encounter: rows('encounters').length,
      Condition: rows('conditions').length,
      Observation: rows('observations').length - metrics,
      MedicationRequest: rows('medications').length,
      Immunization: rows('immunizations').length,
      AllergyIntolerance: rows('allergies').length,
      Procedure: rows('procedures').length,
    });
    expect(rows('patients')).toHaveLength(27);
    // Nothing the synthea mappings do not write.
    for (const type of ['ClinicalImpression', 'CodeSystem', 'ConceptMap', 'Claim', 'Coverage', 'CarePlan', 'Device']) {
      expect(count(type), type).toBe(0);
    }
  });

  it('a patient, field by field against its row', () => {
    const row = rows('patients').find((r) => r.SSN && r.MARITAL && r.ZIP) as Row;
    const patient = medplum
      .allResources<Patient>('Patient')
      .find((p) => identifierValue(p, `${BASE}/synthea/patient-id`) === row.Id) as Patient;
    expect(patient).toBeDefined();
    expect(patient.identifier).toEqual([
      { system: `${BASE}/synthea/patient-id`, value: row.Id },
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'SS', display: 'Social Security number' }] },
        system: 'http://hl7.org/fhir/sid/us-ssn',
        value: row.SSN,
      },
      ...(row.DRIVERS ? [expect.objectContaining({ system: `${BASE}/synthea/drivers-license`, value: row.DRIVERS })] : []),
      ...(row.PASSPORT ? [expect.objectContaining({ system: `${BASE}/synthea/passport`, value: row.PASSPORT })] : []),
    ]);
    expect(patient.name?.[0]).toEqual({
      use: 'official',
      family: row.LAST,
      given: [row.FIRST],
      ...(row.PREFIX ? { prefix: [row.PREFIX] } : {}),
      ...(row.SUFFIX ? { suffix: [row.SUFFIX] } : {}),
    });
    expect(patient.gender).toBe({ M: 'male', F: 'female' }[row.GENDER]);
    expect(patient.birthDate).toBe(row.BIRTHDATE);
    expect(patient.maritalStatus?.coding?.[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: row.MARITAL });
    expect(patient.address).toEqual([
      { use: 'home', line: [row.ADDRESS], city: row.CITY, district: row.COUNTY, state: row.STATE, postalCode: row.ZIP },
    ]);
    expect(patient.deceasedDateTime === undefined).toBe(!row.DEATHDATE);
  });

  it('an encounter with its references to its Patient, Practitioner and Organization', () => {
    const row = rows('encounters').find((r) => r.REASONCODE && r.PROVIDER && r.ORGANIZATION) as Row;
    const encounter = medplum
      .allResources<Encounter>('Encounter')
      .find((e) => identifierValue(e, `${BASE}/synthea/encounter-id`) === row.Id) as Encounter;
    expect(encounter).toBeDefined();
    const byId = <T extends Resource & { identifier?: Identifier[] }>(type: T['resourceType'], system: string, value: string): T =>
      medplum.allResources<T>(type).find((r) => identifierValue(r, `${BASE}/synthea/${system}`) === value) as T;
    const patient = byId<Patient>('Patient', 'patient-id', row.PATIENT);
    const practitioner = byId<Practitioner>('Practitioner', 'provider-id', row.PROVIDER);
    const organization = byId<Organization>('Organization', 'organization-id', row.ORGANIZATION);
    expect(encounter.status).toBe('finished');
    expect(encounter.class).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode' });
    expect(encounter.type).toEqual([{ coding: [{ system: 'http://snomed.info/sct', code: row.CODE, display: row.DESCRIPTION }], text: row.DESCRIPTION }]);
    expect(encounter.subject?.reference).toBe(`Patient/${patient.id}`);
    expect(encounter.participant?.[0]?.individual?.reference).toBe(`Practitioner/${practitioner.id}`);
    expect(encounter.participant?.[0]?.type?.[0]?.coding?.[0]?.code).toBe('PPRF');
    expect(encounter.serviceProvider?.reference).toBe(`Organization/${organization.id}`);
    expect(Date.parse(encounter.period?.start ?? '')).toBe(Date.parse(row.START));
    expect(Date.parse(encounter.period?.end ?? '')).toBe(Date.parse(row.STOP));
    expect(encounter.reasonCode).toEqual([
      { coding: [{ system: 'http://snomed.info/sct', code: row.REASONCODE, display: row.REASONDESCRIPTION }], text: row.REASONDESCRIPTION },
    ]);
  });

  it('a numeric observation with its UCUM quantity', () => {
    const row = rows('observations').find((r) => r.TYPE === 'numeric' && r.UNITS === 'kg/m2') as Row;
    const patient = medplum.allResources<Patient>('Patient').find((p) => identifierValue(p, `${BASE}/synthea/patient-id`) === row.PATIENT) as Patient;
    const encounter = medplum
      .allResources<Encounter>('Encounter')
      .find((e) => identifierValue(e, `${BASE}/synthea/encounter-id`) === row.ENCOUNTER) as Encounter;
    const matches = medplum
      .allResources<Observation>('Observation')
      .filter(
        (o) =>
          o.subject?.reference === `Patient/${patient.id}` &&
          o.code?.coding?.[0]?.code === row.CODE &&
          Date.parse(o.effectiveDateTime ?? '') === Date.parse(row.DATE)
      );
    expect(matches).toHaveLength(1);
    const [observation] = matches;
    expect(observation.status).toBe('final');
    expect(observation.code).toEqual({ coding: [{ system: 'http://loinc.org', code: row.CODE, display: row.DESCRIPTION }], text: row.DESCRIPTION });
    expect(observation.category?.[0]?.coding?.[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: row.CATEGORY });
    expect(observation.valueQuantity).toEqual({ value: Number(row.VALUE), unit: 'kg/m2', system: 'http://unitsofmeasure.org', code: 'kg/m2' });
    expect(observation.valueString).toBeUndefined();
    expect(observation.encounter?.reference).toBe(`Encounter/${encounter.id}`);
    expect(observation.identifier?.[0]?.system).toBe(`${BASE}/synthea/observation-id`);
  });

  it('a medication request, active or stopped by its STOP', () => {
    for (const stopped of [false, true]) {
      const row = rows('medications').find((r) => Boolean(r.STOP) === stopped && r.REASONCODE) as Row;
      const patient = medplum.allResources<Patient>('Patient').find((p) => identifierValue(p, `${BASE}/synthea/patient-id`) === row.PATIENT) as Patient;
      const matches = medplum
        .allResources<MedicationRequest>('MedicationRequest')
        .filter(
          (m) =>
            m.subject?.reference === `Patient/${patient.id}` &&
            m.medicationCodeableConcept?.coding?.[0]?.code === row.CODE &&
            Date.parse(m.authoredOn ?? '') === Date.parse(row.START) &&
            (stopped ? Date.parse(m.dispenseRequest?.validityPeriod?.end ?? '') === Date.parse(row.STOP) : m.dispenseRequest?.validityPeriod?.end === undefined)
        );
      expect(matches, `stopped: ${stopped}`).toHaveLength(1);
      const [request] = matches;
      expect(request.status).toBe(stopped ? 'stopped' : 'active');
      expect(request.intent).toBe('order');
      expect(request.medicationCodeableConcept).toEqual({
        coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: row.CODE, display: row.DESCRIPTION }],
        text: row.DESCRIPTION,
      });
      expect(request.reasonCode?.[0]?.coding?.[0]).toEqual({ system: 'http://snomed.info/sct', code: row.REASONCODE, display: row.REASONDESCRIPTION });
      const encounter = medplum
        .allResources<Encounter>('Encounter')
        .find((e) => identifierValue(e, `${BASE}/synthea/encounter-id`) === row.ENCOUNTER) as Encounter;
      expect(request.encounter?.reference).toBe(`Encounter/${encounter.id}`);
    }
  });

  it('uploading the same files again: every row unchanged, nothing new', async () => {
    const before = medplum.stats.writes;
    const counts = (): number[] =>
      ['Patient', 'Encounter', 'Observation', 'MedicationRequest', 'Practitioner'].map((t) => medplum.allResources(t as 'Patient').length);
    const countsBefore = counts();
    const done = new Set(importTasks(medplum).map((t) => t.id));
    await uploadAll();
    const started = Date.now();
    await sweepUntilDone();
    timings.reImport = Date.now() - started;
    const tasks = importTasks(medplum).filter((t) => !done.has(t.id));
    expect(tasks).toHaveLength(10);
    expect(tasks.map((t) => t.status)).toEqual(tasks.map(() => 'completed'));
    for (const report of Object.values(reportsByTable(tasks))) {
      expect(report, report.table).toMatchObject({ created: 0, updated: 0, failed: 0, unchanged: report.rows - report.skipped });
    }
    expect(counts()).toEqual(countsBefore);
    // Only the uploads, their Tasks and their bookkeeping were written: no clinical resource.
    const clinicalWrites = medplum.stats.writes - before;
    expect(clinicalWrites).toBeLessThan(200);
    expect(enforcer.denied).toEqual([]);
    console.log(`synthea through the built bot (ms, sweeps): ${JSON.stringify(timings)}`);
  }, 60_000);
});
