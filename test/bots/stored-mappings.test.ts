// The built bot (dist/import-csv.js in the vm runner) reading its mappings from the project: an
// edit to a stored mapping changes the next import; broken stored mappings fail the uploads' Tasks
// naming the file and the place; an upload or a call may name its mapping; without readable stored
// mappings the built-in default applies; the derived policy is what lets the bot work.
import type { WithId } from '@medplum/core';
import type { Bot, DocumentReference, Library, Patient, Practitioner, Task } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import { STORED_MAPPINGS } from '../../src/lib/jobs/stored-mappings';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { setupProject } from '../../src/setup/setup-project';
import { botRun, interceptServer, jobResult, taskReportOf } from '../helpers/bot-events';
import { createFakeClock } from '../helpers/clock';
import { guideCsv } from '../helpers/guide';
import { importTasks, uploadCsv } from '../helpers/uploads';
import { BotRunError } from '../helpers/vm-runner';
import { enforceAccessPolicy } from './access-policy-enforcer';
import { editLibraryFile, mappingFolder, mappingLibraries, newProject, peopleAndStaff, storedText } from './mapping-sets';

const BASE = 'https://ehr.example.org/fhir';
const SECRETS = { IDENTIFIER_BASE: BASE, TIME_BUDGET_SECONDS: '60', CONTINUE_IMPORTS: 'false' };
const PEOPLE = 'person_id,family,sex\nA1,Smith,f\nA2,Jones,m\n';

const cleanups: (() => void)[] = [];
afterEach(() => {
  cleanups.splice(0).forEach((done) => done());
});

interface Project {
  medplum: LocalMedplum;
  bot: WithId<Bot>;
  run: (input: unknown, options?: { contentType?: string }) => Promise<unknown>;
}

/** A project set up with a stored mapping set (or none), and a way to run the built bot in it. */
async function projectWith(mappings?: { folder: string } | { profile: string }): Promise<Project> {
  const medplum = createLocalMedplum();
  const project = await newProject(medplum);
  const result = await setupProject(medplum, { projectId: project.id, identifierBase: BASE, mappings });
  const bot = await medplum.readResource('Bot', result.botId);
  const run = async (input: unknown, options: { contentType?: string } = {}): Promise<unknown> =>
    (await botRun(medplum, input, { secrets: SECRETS, bot: `Bot/${bot.id}`, contentType: options.contentType })).result;
  return { medplum, bot, run };
}

function peopleFolder(files: Record<string, string> = peopleAndStaff()): { folder: string } {
  const { folder, done } = mappingFolder(files);
  cleanups.push(done);
  return { folder };
}

function taskOf(medplum: LocalMedplum, doc: DocumentReference): Task {
  return importTasks(medplum).find((t) => t.focus?.reference === `DocumentReference/${doc.id}`) as Task;
}

/** A guide patients file with one row whose gender code the guide's mapping does not know. */
const PATIENTS_WITH_X = `${guideCsv('patients.csv').trimEnd()}\nP003,Alex,Roe,1990-01-01,X\n`;

describe('editing a stored mapping changes the next import (no build, no deploy)', () => {
  it('a code map entry added to the stored patients mapping: the row it failed is imported next time', async () => {
    const { medplum, run } = await projectWith({ profile: 'guide' });

    const first = await uploadCsv(medplum, 'patients.csv', PATIENTS_WITH_X);
    expect(jobResult(await run(first))).toMatchObject({ outcome: 'completed', report: { created: 2, failed: 1 } });
    expect(taskReportOf(taskOf(medplum, first))?.errors[0]).toMatchObject({ row: 4, column: 'gender', sourceId: 'P003' });

    // In the app: the mapping's JSON downloaded, one code added, uploaded in place of content[0].
    const library = mappingLibraries(medplum).patients;
    const mapping = JSON.parse(await storedText(medplum, library.content?.[0].url as string));
    mapping.codes.gender.values.X = 'unknown';
    await editLibraryFile(medplum, library, 'patients.mapping.json', JSON.stringify(mapping, null, 2));

    const second = await uploadCsv(medplum, 'patients.csv', PATIENTS_WITH_X);
    expect(jobResult(await run(second))).toMatchObject({ outcome: 'completed', report: { created: 1, unchanged: 2, failed: 0 } });
    const p003 = medplum.allResources<Patient>('Patient').find((p) => p.identifier?.[0]?.value === 'P003');
    expect(p003?.gender).toBe('unknown');
  });

  it('a retired mapping is not used: its files are no longer recognised', async () => {
    const { medplum, run } = await projectWith(peopleFolder());
    const { staff } = mappingLibraries(medplum);
    await medplum.updateResource({ ...staff, status: 'retired' });
    // Only people is left: the file fits it alone.
    const doc = await uploadCsv(medplum, 'people.csv', PEOPLE);
    expect(jobResult(await run(doc))).toMatchObject({ outcome: 'completed', table: 'people', report: { created: 2 } });
    expect(medplum.allResources('Practitioner')).toHaveLength(0);
  });
});

describe('broken stored mappings fail the uploads, naming the file and the place', () => {
  async function breakPatients(project: Project, text: string): Promise<WithId<Library>> {
    const library = mappingLibraries(project.medplum).patients;
    await editLibraryFile(project.medplum, library, 'patients.mapping.json', text);
    return library;
  }

  it('a MappingSetError: every upload of the run fails with the file (and its Library) and the JSON pointer; nothing is imported', async () => {
    const project = await projectWith({ profile: 'guide' });
    const { medplum, run, bot } = project;
    const original = await storedText(medplum, mappingLibraries(medplum).patients.content?.[0].url as string);
    const library = await breakPatients(project, original.replace('"birthDate"', '"birthDat"'));
    const where = `patients.mapping.json (Library/${library.id}) /resources/0/elements/birthDat`;

    // A Subscription's upload.
    const doc = await uploadCsv(medplum, 'patients.csv', guideCsv('patients.csv'));
    const result = jobResult(await run(doc));
    expect(result.outcome).toBe('failed');
    expect(result.message).toContain(`patients.csv: the stored mappings are broken, so nothing was imported: ${where}: `);
    const task = taskOf(medplum, doc);
    expect(task).toMatchObject({ status: 'failed', businessStatus: { text: 'not imported: the stored mappings are broken' } });
    expect(task.statusReason?.text).toContain(where);
    expect(task.output?.find((o) => o.type.text === 'error')?.valueString).toContain(where);

    // The cron sweep: every pending upload, and every new one, fails the same way.
    const a = await uploadCsv(medplum, 'encounters.csv', guideCsv('encounters.csv'));
    const b = await uploadCsv(medplum, 'conditions.csv', guideCsv('conditions.csv'));
    const sweep = (await run(bot)) as { jobs: { outcome: string }[]; pending: number };
    expect(sweep).toMatchObject({ pending: 0 });
    expect(sweep.jobs.map((j) => j.outcome)).toEqual(['failed', 'failed']);
    for (const d of [a, b]) {
      expect(taskOf(medplum, d).status).toBe('failed');
      expect(taskOf(medplum, d).statusReason?.text).toContain(where);
    }

    // A direct import: refused with the same problems.
    await expect(run({ csv: guideCsv('patients.csv') }, { contentType: 'application/json' })).rejects.toThrow(where);
    expect(medplum.allResources('Patient')).toHaveLength(0);
    expect(medplum.allResources('Encounter')).toHaveLength(0);

    // Fixed (setup restores the mapping), and the Task set back to requested: the next run imports it.
    await setupProject(medplum, { projectId: medplum.allResources('Project')[0].id as string, identifierBase: BASE, mappings: { profile: 'guide' } });
    await medplum.updateResource({ ...taskOf(medplum, doc), status: 'requested' });
    await run(bot);
    expect(taskOf(medplum, doc).status).toBe('completed');
    expect(medplum.allResources('Patient')).toHaveLength(2);
  });

  it('not JSON, a file over the size limit, a name that disagrees with the identifier, a URL elsewhere: each named', async () => {
    const project = await projectWith({ profile: 'guide' });
    const { medplum, run } = project;
    const problemOf = async (): Promise<string> => {
      const doc = await uploadCsv(medplum, 'patients.csv', guideCsv('patients.csv'));
      const result = jobResult(await run(doc));
      expect(result.outcome).toBe('failed');
      return result.message ?? '';
    };
    const library = mappingLibraries(medplum).patients;
    const original = await storedText(medplum, library.content?.[0].url as string);

    await breakPatients(project, '{ "name": "patients", ');
    expect(await problemOf()).toMatch(new RegExp(`patients\\.mapping\\.json \\(Library/${library.id}\\): not valid JSON: `));

    await breakPatients(project, original.replace('"name": "patients"', '"name": "people"'));
    expect(await problemOf()).toContain(`patients.mapping.json (Library/${library.id}) /name: is 'people', but the Library's identifier says 'patients': they must agree`);

    await breakPatients(project, `${original}${' '.repeat(STORED_MAPPINGS.maxFileBytes)}`);
    expect(await problemOf()).toContain(
      `Library/${library.id} (patients) /content/0: patients.mapping.json: the file is larger than the 10 MB limit for a stored mapping file`
    );

    // An attachment URL of another host is refused, and not fetched.
    const current = await medplum.readResource('Library', library.id);
    await medplum.updateResource({ ...current, content: [{ ...current.content?.[0], url: 'https://attacker.example.com/storage/x/y' }, ...(current.content ?? []).slice(1)] });
    const fetched: string[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (url: string) => {
      fetched.push(String(url));
      return new Response('{}');
    }) as typeof fetch;
    try {
      expect(await problemOf()).toContain(
        `Library/${library.id} (patients) /content/0/url: patients.mapping.json: the attachment does not point at a file stored in this Medplum (https://attacker.example.com)`
      );
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(fetched).toEqual([]);
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  it('a second active Library for the same table, or a file that differs between two Libraries', async () => {
    const project = await projectWith(peopleFolder());
    const { medplum, run } = project;
    const { people, staff } = mappingLibraries(medplum);
    await editLibraryFile(medplum, staff, 'sexes.csv', 'code,gender\nm,male\n');
    const doc = await uploadCsv(medplum, 'people.csv', PEOPLE);
    expect(jobResult(await run(doc)).message).toContain(
      `Library/${staff.id} (staff) /content/1: sexes.csv differs from the sexes.csv of Library/${people.id} (people)`
    );

    const copy = await medplum.createResource<Library>({ ...people, id: undefined, meta: undefined });
    const again = await uploadCsv(medplum, 'people.csv', PEOPLE);
    expect(jobResult(await run(again)).message).toMatch(new RegExp(`Library/(${people.id}|${copy.id}) \\(people\\) /identifier: Library/(${people.id}|${copy.id}) is also the active mapping 'people'`));
  });
});

describe('stored mappings the server does not give in time', () => {
  it('nothing is imported and nothing is failed: the upload is left for the next run, which imports it', async () => {
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ clock });
    let unavailable = true;
    let asked = 0;
    interceptServer(medplum, (url, init, next) => {
      if (unavailable && /\/Library\?/.test(url)) {
        asked++;
        const outcome = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', details: { text: 'Service unavailable' } }] };
        return Promise.resolve(new Response(JSON.stringify(outcome), { status: 503, headers: { 'content-type': 'application/fhir+json' } }));
      }
      return next();
    });
    const project = await newProject(medplum);
    unavailable = false;
    const result = await setupProject(medplum, { projectId: project.id, identifierBase: BASE, mappings: { profile: 'guide' } });
    unavailable = true;
    const run = async (input: unknown): Promise<unknown> =>
      (await botRun(medplum, input, { clock, secrets: { ...SECRETS, TIME_BUDGET_SECONDS: '20' }, bot: `Bot/${result.botId}` })).result;

    const doc = await uploadCsv(medplum, 'patients.csv', guideCsv('patients.csv'));
    const started = clock.now();
    expect(jobResult(await run(doc))).toMatchObject({
      outcome: 'interrupted',
      file: 'patients.csv',
      message: expect.stringMatching(/^could not read the stored mappings \(.*\); the next sweep imports the upload$/),
    });
    expect(asked).toBeGreaterThan(1); // retried, within the budget
    expect(clock.now() - started).toBeLessThanOrEqual(20_000);
    expect(importTasks(medplum)).toHaveLength(0);
    expect(await run({ sweep: true })).toMatchObject({ jobs: [], message: expect.stringContaining('could not read the stored mappings') });
    await expect(run({ csv: guideCsv('patients.csv') })).rejects.toThrow(/could not read the stored mappings/);
    expect(medplum.allResources('Patient')).toHaveLength(0);

    unavailable = false;
    clock.advance(5 * 60_000);
    expect(await run({ sweep: true })).toMatchObject({ jobs: [{ outcome: 'completed', file: 'patients.csv' }], pending: 0 });
    expect(medplum.allResources('Patient')).toHaveLength(2);
  });
});

describe('which mapping an upload is imported with', () => {
  it('by its header; by DocumentReference.type (urn:medplum-csv-import:table) when the header fits several; by "table" or "mapping" in $execute', async () => {
    const { medplum, run, bot } = await projectWith(peopleFolder());

    // people and staff have the same columns: the header alone cannot tell.
    const unnamed = await uploadCsv(medplum, 'people.csv', PEOPLE);
    expect(jobResult(await run(unnamed))).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/fits more than one table equally \(people, staff\)/) });

    // Named on the upload.
    const named = await medplum.createResource<DocumentReference>({
      ...(await uploadCsv(medplum, 'staff.csv', PEOPLE)),
      id: undefined,
      meta: undefined,
      type: { coding: [{ system: STORED_MAPPINGS.tableSystem, code: 'staff' }] },
    });
    expect(jobResult(await run(named))).toMatchObject({ outcome: 'completed', table: 'staff', report: { created: 2 } });
    expect(medplum.allResources<Practitioner>('Practitioner').map((p) => [p.name?.[0]?.family, p.gender])).toEqual([
      ['Smith', 'female'],
      ['Jones', 'male'],
    ]);

    // Found by the cron sweep (no event ran for it): the name on the upload still decides.
    const swept = await medplum.createResource<DocumentReference>({
      ...(await uploadCsv(medplum, 'staff-again.csv', PEOPLE)),
      id: undefined,
      meta: undefined,
      type: { coding: [{ system: STORED_MAPPINGS.tableSystem, code: 'staff' }] },
    });
    await run(bot);
    expect(taskOf(medplum, swept)).toMatchObject({ status: 'completed', input: expect.arrayContaining([{ type: { text: 'table' }, valueString: 'staff' }]) });

    // Named in the call: "mapping" is a synonym of "table".
    expect(await run({ csv: PEOPLE, mapping: 'people' }, { contentType: 'application/json' })).toMatchObject({ table: 'people', created: 2 });
    expect(await run({ document: { reference: `DocumentReference/${unnamed.id}` }, table: 'people' }, { contentType: 'application/json' })).toMatchObject({
      outcome: 'already-done',
    });
    const attempt = run({ csv: PEOPLE, table: 'people', mapping: 'staff' }, { contentType: 'application/json' });
    await expect(attempt).rejects.toBeInstanceOf(BotRunError);
    await expect(attempt).rejects.toThrow(/"table" and "mapping" name the same thing/);
    await expect(run({ csv: PEOPLE, mapping: 'nurses' }, { contentType: 'application/json' })).rejects.toThrow(/unknown table 'nurses' \(known tables: people, staff\)/);

    // An upload naming a mapping the project does not have fails its Task, naming it.
    const unknown = await medplum.createResource<DocumentReference>({
      ...(await uploadCsv(medplum, 'x.csv', PEOPLE)),
      id: undefined,
      meta: undefined,
      type: { coding: [{ system: STORED_MAPPINGS.tableSystem, code: 'nurses' }] },
    });
    expect(jobResult(await run(unknown))).toMatchObject({ outcome: 'failed', message: expect.stringContaining("unknown table 'nurses'") });
  });
});

describe('the built-in default and the access policy', () => {
  it('no stored mappings: the built-in guide profile', async () => {
    const { medplum, run } = await projectWith();
    expect(await run(guideCsv('patients.csv'), { contentType: 'text/plain' })).toMatchObject({ table: 'patients', created: 2 });
    expect(medplum.allResources('Library')).toHaveLength(0);
  });

  it('stored mappings the bot may not read (a policy from before, without the Library rule): the built-in default, no 403 failure', async () => {
    const medplum = createLocalMedplum();
    const enforcer = enforceAccessPolicy(medplum);
    const project = await newProject(medplum);
    const plain = await setupProject(medplum, { projectId: project.id, identifierBase: BASE });
    enforcer.policy = await medplum.readResource('AccessPolicy', plain.accessPolicyId);
    // Libraries stored by hand (not by setup, which would extend the policy).
    const { folder } = peopleFolder();
    const other = createLocalMedplum();
    const otherProject = await newProject(other);
    await setupProject(other, { projectId: otherProject.id, mappings: { folder } });
    for (const library of other.allResources<Library>('Library')) {
      await medplum.createResource<Library>({ ...library, id: undefined, meta: undefined });
    }

    enforcer.enabled = true;
    const { result } = await botRun(medplum, guideCsv('patients.csv'), { secrets: SECRETS, bot: `Bot/${plain.botId}`, contentType: 'text/plain' });
    enforcer.enabled = false;
    expect(result).toMatchObject({ table: 'patients', created: 2 });
    expect(enforcer.denied).toEqual(['Library search: GET Library?...']);
  });

  it('the derived policy lets the bot write what the stored mappings write; without a type the server refuses it', async () => {
    const medplum = createLocalMedplum();
    const enforcer = enforceAccessPolicy(medplum);
    const project = await newProject(medplum);
    const result = await setupProject(medplum, { projectId: project.id, identifierBase: BASE, mappings: peopleFolder() });
    const policy = await medplum.readResource('AccessPolicy', result.accessPolicyId);
    enforcer.policy = policy;
    const run = async (input: unknown): Promise<unknown> => {
      enforcer.enabled = true;
      try {
        return (await botRun(medplum, input, { secrets: SECRETS, bot: `Bot/${result.botId}`, contentType: 'application/json' })).result;
      } finally {
        enforcer.enabled = false;
      }
    };
    expect(await run({ csv: PEOPLE, table: 'staff' })).toMatchObject({ created: 2, failed: 0 });
    expect(enforcer.denied).toEqual([]);
    expect([...enforcer.seen].filter((s) => s.startsWith('Practitioner:'))).not.toHaveLength(0);

    // The same import with Practitioner taken out of the policy: the server refuses the bot (403).
    enforcer.policy = { ...policy, resource: policy.resource?.filter((r) => r.resourceType !== 'Practitioner') };
    await expect(run({ csv: PEOPLE.replace(/A(\d)/g, 'B$1'), table: 'staff' })).rejects.toThrow(/Forbidden/);
    expect(enforcer.denied.some((d) => d.startsWith('Practitioner search'))).toBe(true);
    expect(medplum.allResources('Practitioner')).toHaveLength(2);
  });
});
