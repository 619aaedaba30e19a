// npm run setup -- --mapping <folder> / --profile <name>: the mapping set stored in the project as
// Libraries (idempotent, retiring what left the set), and the bot's access policy derived from it.
import type { AccessPolicyInteraction } from '@medplum/core';
import { satisfiedAccessPolicy } from '@medplum/core';
import type { AccessPolicy, Binary, Library, Resource } from '@medplum/fhirtypes';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { STORED_MAPPINGS } from '../../src/lib/jobs/stored-mappings';
import { ensureDefinitionsIndexed } from '../../src/lib/local-medplum/definitions';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { BUILT_IN_TABLES, loadProfile } from '../../src/lib/profiles';
import {
  botAccessPolicyResources,
  BUILT_IN_TABLE_WRITES,
  DEFAULT_DATA_RESOURCE_TYPES,
  MAPPING_LIBRARY_CRITERIA,
  mappingDataAccess,
} from '../../src/setup/bot-access-policy';
import { planMappings } from '../../src/setup/mapping-libraries';
import { main as setupMain } from '../../src/setup/setup';
import { setupProject } from '../../src/setup/setup-project';
import { mappingFolder, mappingLibraries, newProject, peopleAndStaff, storedText } from '../bots/mapping-sets';

const ALL: AccessPolicyInteraction[] = ['read', 'vread', 'history', 'search', 'create', 'update', 'delete'];
const SYNTHEA_WRITES = [
  'AllergyIntolerance',
  'Condition',
  'Encounter',
  'Immunization',
  'MedicationRequest',
  'Observation',
  'Organization',
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Procedure',
];

const cleanups: (() => void)[] = [];
afterEach(() => {
  cleanups.splice(0).forEach((done) => done());
});

function folderWith(files: Record<string, string>): string {
  const { folder, done } = mappingFolder(files);
  cleanups.push(done);
  return folder;
}

beforeAll(() => {
  ensureDefinitionsIndexed();
});

describe('the access policy derived from the mappings', () => {
  test('synthea-csv: the eleven types it writes, the mapping Libraries, nothing unrelated', async () => {
    const planned = planMappings({ profile: 'synthea-csv' });
    expect(mappingDataAccess(planned.set, planned.files)).toEqual({ writes: SYNTHEA_WRITES, reads: [] });

    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const result = await setupProject(medplum, { projectId: project.id, mappings: { profile: 'synthea-csv' } });
    const policy = await medplum.readResource('AccessPolicy', result.accessPolicyId);
    expect(policy.resource).toEqual([
      { resourceType: 'DocumentReference', interaction: ['read', 'search'] },
      { resourceType: 'Binary', interaction: ['read', 'create'] },
      { resourceType: 'Task', criteria: 'Task?code=urn:medplum-csv-import|', interaction: ['read', 'search', 'create', 'update'] },
      ...SYNTHEA_WRITES.map((resourceType) => ({ resourceType, interaction: ['read', 'search', 'create', 'update', 'delete'] })),
      { resourceType: 'Library', criteria: 'Library?identifier=urn:medplum-csv-import:mapping|', interaction: ['read', 'search'] },
      { resourceType: 'Bot', criteria: `Bot?_id=${result.botId}`, interaction: ['read'] },
      { resourceType: 'AsyncJob', interaction: ['create'] },
    ]);
    const allowed = (resource: Resource): AccessPolicyInteraction[] => ALL.filter((i) => satisfiedAccessPolicy(resource, i, policy));
    for (const resourceType of SYNTHEA_WRITES) {
      expect(allowed({ resourceType } as Resource), resourceType).toEqual(['read', 'search', 'create', 'update', 'delete']);
    }
    // The guide's types, terminology, billing: none of them.
    for (const resourceType of ['ClinicalImpression', 'CodeSystem', 'ConceptMap', 'Claim', 'Coverage', 'ExplanationOfBenefit', 'CarePlan', 'Device', 'Subscription', 'AccessPolicy', 'Project']) {
      expect(allowed({ resourceType } as Resource), resourceType).toEqual([]);
    }
    // Mapping Libraries only: read and search, never written by the bot.
    const mapping: Library = { resourceType: 'Library', status: 'active', type: STORED_MAPPINGS.libraryType, identifier: [{ system: STORED_MAPPINGS.identifierSystem, value: 'patients' }] };
    expect(allowed(mapping)).toEqual(['read', 'search']);
    expect(allowed({ ...mapping, identifier: [{ system: 'https://example.org/other', value: 'x' }] })).toEqual([]);
    expect(result.dataAccess).toEqual({ writes: SYNTHEA_WRITES, reads: [] });
  });

  test('the guide profile stored: the same data types as the built-in default, plus the mapping Libraries', () => {
    const planned = planMappings({ profile: 'guide' });
    const access = mappingDataAccess(planned.set, planned.files);
    // patient_conditions reads the catalog's CodeSystem and ConceptMap, which the built-in conditions table writes.
    expect(access).toEqual({ writes: [...DEFAULT_DATA_RESOURCE_TYPES].sort(), reads: [] });
  });

  test('lookups: stored code maps and references by identifier are read and searched, not written', () => {
    const labs = JSON.stringify({
      name: 'labs',
      columns: { lab_id: { required: true }, code: { required: true }, clinic: {} },
      key: ['lab_id'],
      codes: { loinc: { conceptMap: 'https://example.org/ConceptMap/labs' }, units: { codeSystem: 'https://example.org/CodeSystem/units' } },
      resources: [
        {
          type: 'Observation',
          identifier: { system: '{$base}/lab-id', value: '{lab_id}' },
          elements: {
            status: { fixed: 'final' },
            code: { column: 'code', map: 'loinc' },
            'valueCodeableConcept.coding[0]': { column: 'code', map: 'units' },
            performer: { reference: { type: 'Organization', identifier: { system: '{$base}/clinic-id', value: '{clinic}' } } },
          },
        },
      ],
    });
    const planned = planMappings({ folder: folderWith({ 'labs.mapping.json': labs }) });
    const access = mappingDataAccess(planned.set, planned.files);
    expect(access).toEqual({ writes: ['Observation'], reads: ['CodeSystem', 'ConceptMap', 'Organization'] });
    const policy: AccessPolicy = {
      resourceType: 'AccessPolicy',
      resource: botAccessPolicyResources({ dataResourceTypes: access.writes, readResourceTypes: access.reads, storedMappings: true }),
    };
    for (const resourceType of access.reads) {
      expect(ALL.filter((i) => satisfiedAccessPolicy({ resourceType } as Resource, i, policy))).toEqual(['read', 'search']);
    }
  });

  test('every built-in table says what it writes', () => {
    for (const table of BUILT_IN_TABLES) {
      expect(BUILT_IN_TABLE_WRITES[table.name], table.name).toBeDefined();
    }
    expect(MAPPING_LIBRARY_CRITERIA).toBe(`Library?identifier=${STORED_MAPPINGS.identifierSystem}|`);
    expect(loadProfile('guide').tables.map((t) => t.name)).toContain('conditions');
  });
});

describe('storing a mapping set', () => {
  test('one Library per mapping; a dictionary two mappings use is one Binary; other CSVs of the folder are not stored', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const folder = folderWith(peopleAndStaff());
    const lines: string[] = [];
    const result = await setupProject(medplum, { projectId: project.id, mappings: { folder }, log: (l) => lines.push(l) });

    const libraries = mappingLibraries(medplum);
    expect(Object.keys(libraries).sort()).toEqual(['people', 'staff']);
    expect(result.mappings).toEqual({ libraries: { people: `Library/${libraries.people.id}`, staff: `Library/${libraries.staff.id}` }, retired: [] });
    expect(libraries.people).toMatchObject({
      name: 'people',
      title: 'CSV import mapping: people',
      status: 'active',
      description: 'people: one Patient per row',
      type: STORED_MAPPINGS.libraryType,
      identifier: [{ system: 'urn:medplum-csv-import:mapping', value: 'people' }],
    });
    expect(libraries.people.content?.map((a) => [a.title, a.contentType])).toEqual([
      ['people.mapping.json', 'application/json'],
      ['sexes.csv', 'text/csv'],
    ]);
    expect(libraries.staff.content?.[1].url).toBe(libraries.people.content?.[1].url);
    expect(await storedText(medplum, libraries.people.content?.[0].url as string)).toBe(peopleAndStaff()['people.mapping.json']);
    expect(await storedText(medplum, libraries.staff.content?.[1].url as string)).toBe('code,gender\nm,male\nf,female\n');
    expect(libraries.people.content?.[0]).toMatchObject({ size: Buffer.byteLength(peopleAndStaff()['people.mapping.json']), hash: expect.any(String) });
    expect(medplum.allResources<Binary>('Binary').filter((b) => b.contentType !== 'text/typescript')).toHaveLength(3); // (not the Bot's code) two mappings and one dictionary: notes.csv is not stored
    expect(lines).toContain('mappings: ' + folder + ': people, staff');
    expect(lines.filter((l) => l.startsWith('created Library'))).toHaveLength(2);

    // The policy: what these mappings write and look up.
    expect(result.dataAccess).toEqual({ writes: ['Patient', 'Practitioner'], reads: ['Organization'] });
  });

  test('running it again with the same files writes nothing', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const folder = folderWith(peopleAndStaff());
    await setupProject(medplum, { projectId: project.id, mappings: { folder } });
    await setupProject(medplum, { projectId: project.id, mappings: { profile: 'synthea-csv' } });
    const writes = medplum.stats.writes;

    const again = await setupProject(medplum, { projectId: project.id, mappings: { profile: 'synthea-csv' } });

    expect(medplum.stats.writes).toBe(writes);
    expect(again.changed).toBe(false);
    expect(again.actions.filter((a) => a.resource.startsWith('Library/')).map((a) => a.kind)).toEqual(Array(10).fill('kept'));
  });

  test('mappings no longer in the set are retired, and come back when they return; a changed file gets a new Binary', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const files = peopleAndStaff();
    await setupProject(medplum, { projectId: project.id, mappings: { folder: folderWith(files) } });
    const before = mappingLibraries(medplum);

    // The guide replaces them: people and staff retired (not deleted), the guide's three stored.
    const guide = await setupProject(medplum, { projectId: project.id, mappings: { profile: 'guide' } });
    let libraries = mappingLibraries(medplum);
    expect(Object.fromEntries(Object.entries(libraries).map(([t, l]) => [t, l.status]))).toEqual({
      people: 'retired',
      staff: 'retired',
      patients: 'active',
      patient_conditions: 'active',
      encounters: 'active',
    });
    expect(guide.mappings?.retired.sort()).toEqual([`Library/${before.people.id}`, `Library/${before.staff.id}`].sort());
    expect(guide.actions.find((a) => a.resource === `Library/${before.people.id}`)?.changes).toEqual(['status active -> retired']);
    // The guide's profile.json goes with each of its mappings (one Binary).
    expect(libraries.patients.content?.map((a) => a.title)).toEqual(['patients.mapping.json', 'profile.json']);
    expect(new Set(['patients', 'patient_conditions', 'encounters'].map((t) => libraries[t].content?.[1].url)).size).toBe(1);
    expect(guide.dataAccess?.writes).toEqual([...DEFAULT_DATA_RESOURCE_TYPES].sort());

    // Back to people and staff, with one code more in the dictionary.
    const changed = { ...files, 'sexes.csv': `${files['sexes.csv']}u,unknown\n` };
    const back = await setupProject(medplum, { projectId: project.id, mappings: { folder: folderWith(changed) } });
    libraries = mappingLibraries(medplum);
    expect(libraries.people.id).toBe(before.people.id);
    expect(libraries.people.status).toBe('active');
    expect(libraries.people.content?.[0].url).toBe(before.people.content?.[0].url); // unchanged mapping: same Binary
    expect(libraries.people.content?.[1].url).not.toBe(before.people.content?.[1].url);
    expect(libraries.staff.content?.[1].url).toBe(libraries.people.content?.[1].url);
    expect(back.actions.find((a) => a.resource === `Library/${before.people.id}`)?.changes).toEqual(['status retired -> active', 'content: sexes.csv new']);
    expect(libraries.patients.status).toBe('retired');
  });

  test('a Library edited in the app is restored by setup; other fields a user added are kept', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const folder = folderWith(peopleAndStaff());
    await setupProject(medplum, { projectId: project.id, mappings: { folder } });
    const { people } = mappingLibraries(medplum);
    const other = await medplum.createAttachment({ data: '{}', contentType: 'text/plain', filename: 'people.mapping.json' });
    await medplum.updateResource({ ...people, version: '7', content: [{ ...people.content?.[0], url: other.url }, ...(people.content ?? []).slice(1)] });

    const result = await setupProject(medplum, { projectId: project.id, mappings: { folder } });

    const restored = mappingLibraries(medplum).people;
    expect(result.actions.find((a) => a.resource === `Library/${people.id}`)).toMatchObject({ kind: 'updated', changes: ['content: people.mapping.json new'] });
    expect(await storedText(medplum, restored.content?.[0].url as string)).toBe(peopleAndStaff()['people.mapping.json']);
    expect(restored.version).toBe('7');
  });

  test('without --mapping or --profile: stored mappings are left alone, and the policy still covers them', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id, mappings: { profile: 'synthea-csv' } });
    const writes = medplum.stats.writes;

    const plain = await setupProject(medplum, { projectId: project.id });

    expect(medplum.stats.writes).toBe(writes);
    expect(plain.changed).toBe(false);
    expect(plain.dataAccess).toEqual(first.dataAccess);
    expect(plain.mappings).toBeUndefined();
  });

  test('without options on a project with nothing stored: the policy is the built-in default, as before', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const result = await setupProject(medplum, { projectId: project.id });
    const policy = await medplum.readResource('AccessPolicy', result.accessPolicyId);
    expect(policy.resource).toEqual(botAccessPolicyResources({ botId: result.botId }));
    expect(policy.resource?.some((r) => r.resourceType === 'Library')).toBe(false);
    expect(medplum.allResources('Library')).toHaveLength(0);
    expect(result.dataAccess).toBeUndefined();
  });

  test('a broken set fails before anything is written, naming the file and the place', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const files = peopleAndStaff();
    const broken = { ...files, 'people.mapping.json': files['people.mapping.json'].replace('"name[0].family"', '"name[0].famly"') };
    const writes = medplum.stats.writes;
    await expect(setupProject(medplum, { projectId: project.id, mappings: { folder: folderWith(broken) } })).rejects.toThrow(
      /people\.mapping\.json \/resources\/0\/elements\/name\[0\]\.famly: /
    );
    await expect(setupProject(medplum, { projectId: project.id, mappings: { profile: 'nope' } })).rejects.toThrow(/unknown profile 'nope' \(there are guide, synthea-csv\)/);
    await expect(setupProject(medplum, { projectId: project.id, mappings: { folder: '/no/such/folder' } })).rejects.toThrow(/no such folder/);
    expect(medplum.stats.writes).toBe(writes);
  });

  test('the command line: --mapping and --profile, not both; a bad set fails before logging in', async () => {
    await expect(setupMain(['--mapping', 'x', '--profile', 'guide', '--no-write-config'], () => undefined)).rejects.toThrow(/--mapping or --profile, not both/);
    await expect(setupMain(['--profile', 'nope', '--no-write-config'], () => undefined)).rejects.toThrow(/unknown profile 'nope'/);
  });
});
