import type { WithId } from '@medplum/core';
import type { AccessPolicy, Bot, Project, ProjectMembership, Resource, Subscription } from '@medplum/fhirtypes';
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { deployBots } from '../../src/setup/deploy';
import { main as setupMain } from '../../src/setup/setup';
import type { SetupResult } from '../../src/setup/setup-project';
import { DEFAULT_CRON, setupProject } from '../../src/setup/setup-project';
import { SUPPORTED_INTERACTION_URL } from '../../src/setup/upload-subscriptions';
import { FHIRPATH_CRITERIA_EXTENSION, UPLOAD_FHIRPATH_CRITERIA, UPLOAD_SUBSCRIPTION_CRITERIA } from '../../src/lib/input/uploads';

const IDENTIFIER_BASE = 'https://ehr.example.org/fhir';

async function newProject(medplum: LocalMedplum, features: Project['features'] = ['bots', 'cron', 'transaction-bundles']): Promise<WithId<Project>> {
  return medplum.createResource<Project>({ resourceType: 'Project', name: 'CSV migration', features });
}

/** Every resource setup manages, with its current version. */
function versions(medplum: LocalMedplum): Record<string, string | undefined> {
  const all: Resource[] = [
    ...medplum.allResources<Project>('Project'),
    ...medplum.allResources<AccessPolicy>('AccessPolicy'),
    ...medplum.allResources<Bot>('Bot'),
    ...medplum.allResources<ProjectMembership>('ProjectMembership'),
    ...medplum.allResources<Subscription>('Subscription'),
  ];
  return Object.fromEntries(all.map((r) => [`${r.resourceType}/${r.id}`, r.meta?.versionId]));
}

function kinds(result: SetupResult): Record<string, string> {
  return Object.fromEntries(result.actions.map((a) => [a.resource, a.kind]));
}

describe('setupProject on an empty project', () => {
  test('the first run creates the policy, the Bot with its membership, the Bot rule of the policy, two Subscriptions, schedule, timeout and secrets', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const lines: string[] = [];

    const result = await setupProject(medplum, { projectId: project.id, identifierBase: IDENTIFIER_BASE, log: (l) => lines.push(l) });

    expect(result.changed).toBe(true);
    expect(result.warnings).toEqual([]);
    expect(result.actions.map((a) => [a.kind, a.resource.split('/')[0]])).toEqual([
      ['created', 'AccessPolicy'], // without a Bot rule: the Bot does not exist yet
      ['created', 'Bot'],
      ['updated', 'AccessPolicy'], // read of that Bot only
      ['kept', 'ProjectMembership'], // created with the Bot, already pointing at the policy
      ['created', 'Subscription'],
      ['created', 'Subscription'],
      ['updated', 'Project'],
    ]);
    expect(result.actions[2].changes).toEqual(['rules added: Bot']);
    expect(lines).toHaveLength(7);
    expect(lines.join('\n')).not.toContain(IDENTIFIER_BASE); // secret values stay out of the output

    // The Bot: schedule and timeout.
    const [bot] = medplum.allResources<Bot>('Bot');

    // The access policy (its content: test/setup/bot-access-policy.test.ts), with the Bot rule for this Bot.
    const [policy] = medplum.allResources<AccessPolicy>('AccessPolicy');
    expect(policy.id).toBe(result.accessPolicyId);
    expect(policy.name).toBe('import-csv bot');
    expect(policy.resource?.find((r) => r.resourceType === 'Bot')).toEqual({
      resourceType: 'Bot',
      criteria: `Bot?_id=${bot.id}`,
      interaction: ['read'],
    });
    expect(bot).toMatchObject({ id: result.botId, name: 'import-csv', cronString: DEFAULT_CRON, timeout: 60 });

    // Its membership (made by the admin endpoint) carries the policy.
    const [membership] = medplum.allResources<ProjectMembership>('ProjectMembership');
    expect(membership).toMatchObject({
      id: result.membershipId,
      profile: { reference: `Bot/${bot.id}` },
      user: { reference: `Bot/${bot.id}` },
      project: { reference: `Project/${project.id}` },
      accessPolicy: { reference: `AccessPolicy/${policy.id}` },
    });

    // One Subscription per interaction, rest-hook to the Bot, on the shared upload rule.
    const subscriptions = medplum.allResources<Subscription>('Subscription');
    expect(subscriptions).toHaveLength(2);
    const byInteraction: Record<string, WithId<Subscription>> = Object.fromEntries(
      subscriptions.map((s) => [s.extension?.find((e) => e.url === SUPPORTED_INTERACTION_URL)?.valueCode, s])
    );
    expect(Object.keys(byInteraction).sort()).toEqual(['create', 'update']);
    for (const [interaction, subscription] of Object.entries(byInteraction)) {
      expect(subscription).toMatchObject({
        status: 'active',
        criteria: UPLOAD_SUBSCRIPTION_CRITERIA,
        channel: { type: 'rest-hook', endpoint: `Bot/${bot.id}`, payload: 'application/fhir+json' },
      });
      expect(subscription.extension).toEqual([
        { url: SUPPORTED_INTERACTION_URL, valueCode: interaction },
        { url: FHIRPATH_CRITERIA_EXTENSION, valueString: UPLOAD_FHIRPATH_CRITERIA },
      ]);
      expect(result.subscriptionIds[interaction as 'create' | 'update']).toBe(subscription.id);
    }

    // Project secrets the bot reads; the others are kept.
    const stored = await medplum.readResource('Project', project.id);
    expect(stored.secret).toEqual([
      { name: 'IDENTIFIER_BASE', valueString: IDENTIFIER_BASE },
      { name: 'TIME_BUDGET_SECONDS', valueInteger: 36 },
    ]);
    expect(stored.features).toEqual(project.features);
  });

  test('running it again changes nothing: no writes, no new versions, everything kept', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id, identifierBase: IDENTIFIER_BASE });
    const before = versions(medplum);
    const writes = medplum.stats.writes;

    const second = await setupProject(medplum, { projectId: project.id, identifierBase: IDENTIFIER_BASE });

    expect(medplum.stats.writes).toBe(writes);
    expect(versions(medplum)).toEqual(before);
    expect(second.changed).toBe(false);
    expect(second.actions.every((a) => a.kind === 'kept')).toBe(true);
    expect(second.actions).toHaveLength(6); // the policy is looked at once: the Bot exists
    expect({ ...second, actions: [] }).toEqual({ ...first, actions: [], changed: false });
    expect(medplum.allResources('Bot')).toHaveLength(1);
    expect(medplum.allResources('Subscription')).toHaveLength(2);
    expect(medplum.allResources('AccessPolicy')).toHaveLength(1);
  });

  test('a changed cron string updates the Bot and nothing else', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id });
    const before = versions(medplum);
    const writes = medplum.stats.writes;

    const result = await setupProject(medplum, { projectId: project.id, cronString: '0 * * * *' });

    expect(medplum.stats.writes).toBe(writes + 1);
    const changedVersions = Object.entries(versions(medplum)).filter(([ref, v]) => before[ref] !== v);
    expect(changedVersions.map(([ref]) => ref)).toEqual([`Bot/${first.botId}`]);
    expect(result.actions.filter((a) => a.kind !== 'kept')).toEqual([
      {
        kind: 'updated',
        resource: `Bot/${first.botId}`,
        description: "Bot 'import-csv'",
        changes: [`cronString '${DEFAULT_CRON}' -> '0 * * * *'`],
      },
    ]);
    const bot = await medplum.readResource('Bot', first.botId);
    expect(bot).toMatchObject({ cronString: '0 * * * *', timeout: 60 });

    // And removing the schedule removes the field.
    await setupProject(medplum, { projectId: project.id, cronString: null });
    expect((await medplum.readResource('Bot', first.botId)).cronString).toBeUndefined();
  });

  test('a changed timeout updates the Bot and the time budget secret', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id });

    const result = await setupProject(medplum, { projectId: project.id, timeoutSeconds: 120 });

    expect(kinds(result)).toMatchObject({ [`Bot/${first.botId}`]: 'updated', [`Project/${project.id}`]: 'updated' });
    expect(result.actions.filter((a) => a.kind === 'updated')).toHaveLength(2);
    expect((await medplum.readResource('Bot', first.botId)).timeout).toBe(120);
    expect((await medplum.readResource('Project', project.id)).secret).toEqual([{ name: 'TIME_BUDGET_SECONDS', valueInteger: 72 }]);
  });

  test('repairs what was changed by hand: policy rules, membership policy, a disabled Subscription', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id });

    const policy = await medplum.readResource('AccessPolicy', first.accessPolicyId);
    await medplum.updateResource({ ...policy, resource: [{ resourceType: '*' }] });
    const membership = await medplum.readResource('ProjectMembership', first.membershipId as string);
    await medplum.updateResource({ ...membership, accessPolicy: undefined });
    const subscription = await medplum.readResource('Subscription', first.subscriptionIds.update);
    await medplum.updateResource({ ...subscription, status: 'off' });

    const result = await setupProject(medplum, { projectId: project.id });

    expect(kinds(result)).toEqual({
      [`AccessPolicy/${first.accessPolicyId}`]: 'updated',
      [`Bot/${first.botId}`]: 'kept',
      [`ProjectMembership/${first.membershipId}`]: 'updated',
      [`Subscription/${first.subscriptionIds.create}`]: 'kept',
      [`Subscription/${first.subscriptionIds.update}`]: 'updated',
      [`Project/${project.id}`]: 'kept',
    });
    expect((await medplum.readResource('ProjectMembership', first.membershipId as string)).accessPolicy).toEqual({
      reference: `AccessPolicy/${first.accessPolicyId}`,
    });
    expect((await medplum.readResource('Subscription', first.subscriptionIds.update)).status).toBe('active');
    expect((await medplum.readResource('AccessPolicy', first.accessPolicyId)).resource).toEqual(policy.resource);
  });

  test('brings what an earlier setup wrote up to date in place (text/csv-only Subscriptions, broad policy rules); then keeps it', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id });
    const wantedPolicy = (await medplum.readResource('AccessPolicy', first.accessPolicyId)).resource;
    // As the earlier setup left them: exact text/csv criteria, only the interaction extension;
    // Task, Binary and Bot without criteria, read on everything, no AsyncJob.
    for (const interaction of ['create', 'update'] as const) {
      const subscription = await medplum.readResource('Subscription', first.subscriptionIds[interaction]);
      await medplum.updateResource({
        ...subscription,
        criteria: 'DocumentReference?contenttype=text/csv',
        extension: [{ url: SUPPORTED_INTERACTION_URL, valueCode: interaction }],
      });
    }
    const policy = await medplum.readResource('AccessPolicy', first.accessPolicyId);
    const readWrite = ['read', 'search', 'create', 'update'] as const;
    await medplum.updateResource({
      ...policy,
      resource: [
        { resourceType: 'DocumentReference', interaction: ['read', 'search'] },
        { resourceType: 'Binary', interaction: ['read', 'create'] },
        ...['Task', 'Patient', 'Condition', 'Encounter', 'ClinicalImpression', 'CodeSystem', 'ConceptMap'].map((resourceType) => ({
          resourceType: resourceType as 'Task',
          interaction: [...readWrite],
        })),
        { resourceType: 'Bot', interaction: ['read'] },
      ],
    });

    const result = await setupProject(medplum, { projectId: project.id });

    expect(kinds(result)).toEqual({
      [`AccessPolicy/${first.accessPolicyId}`]: 'updated',
      [`Bot/${first.botId}`]: 'kept',
      [`ProjectMembership/${first.membershipId}`]: 'kept',
      [`Subscription/${first.subscriptionIds.create}`]: 'updated',
      [`Subscription/${first.subscriptionIds.update}`]: 'updated',
      [`Project/${project.id}`]: 'kept',
    });
    expect(result.warnings).toEqual([]);
    expect(result.subscriptionIds).toEqual(first.subscriptionIds); // the same Subscriptions, not new ones
    expect(medplum.allResources('Subscription')).toHaveLength(2);
    const subscriptionUpdate = result.actions.find((a) => a.resource === `Subscription/${first.subscriptionIds.create}`);
    expect(subscriptionUpdate?.changes).toEqual([
      `criteria DocumentReference?contenttype=text/csv -> ${UPLOAD_SUBSCRIPTION_CRITERIA}`,
      'extensions (interaction, CSV upload FHIRPath criteria)',
    ]);
    expect(result.actions.find((a) => a.resource.startsWith('AccessPolicy/'))?.changes).toEqual([
      'rules added: AsyncJob',
      'rules changed: Task, Patient, Condition, Encounter, ClinicalImpression, CodeSystem, ConceptMap, Bot',
    ]);
    for (const interaction of ['create', 'update'] as const) {
      const subscription = await medplum.readResource('Subscription', first.subscriptionIds[interaction]);
      expect(subscription.criteria).toBe(UPLOAD_SUBSCRIPTION_CRITERIA);
      expect(subscription.extension).toEqual([
        { url: SUPPORTED_INTERACTION_URL, valueCode: interaction },
        { url: FHIRPATH_CRITERIA_EXTENSION, valueString: UPLOAD_FHIRPATH_CRITERIA },
      ]);
    }
    expect((await medplum.readResource('AccessPolicy', first.accessPolicyId)).resource).toEqual(wantedPolicy);

    const writes = medplum.stats.writes;
    const again = await setupProject(medplum, { projectId: project.id });
    expect(again.changed).toBe(false);
    expect(medplum.stats.writes).toBe(writes);
  });

  test('a Subscription setup wrote before, next to an up-to-date one, is reported as a duplicate, not rewritten', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id });
    const legacy = await medplum.createResource<Subscription>({
      resourceType: 'Subscription',
      status: 'active',
      reason: 'by an earlier setup',
      criteria: 'DocumentReference?contenttype=text/csv',
      channel: { type: 'rest-hook', endpoint: `Bot/${first.botId}` },
      extension: [{ url: SUPPORTED_INTERACTION_URL, valueCode: 'create' }],
    });

    const result = await setupProject(medplum, { projectId: project.id });

    expect(result.changed).toBe(false);
    expect(result.subscriptionIds).toEqual(first.subscriptionIds);
    expect(result.warnings).toEqual([
      expect.stringContaining(`Subscription/${legacy.id} duplicates Subscription/${first.subscriptionIds.create} (create)`),
    ]);
  });

  test('finds an existing Bot by exact name and leaves other Subscriptions to it alone, with a warning', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const first = await setupProject(medplum, { projectId: project.id });
    // A look-alike name (the server's name search is a prefix match) and a hand-made Subscription.
    await medplum.post(`admin/projects/${project.id}/bot`, { name: 'import-csv-old' });
    const stray = await medplum.createResource<Subscription>({
      resourceType: 'Subscription',
      status: 'active',
      reason: 'by hand',
      criteria: 'DocumentReference',
      channel: { type: 'rest-hook', endpoint: `Bot/${first.botId}` },
    });

    const result = await setupProject(medplum, { projectId: project.id });

    expect(result.botId).toBe(first.botId);
    expect(result.changed).toBe(false);
    expect(result.warnings).toEqual([expect.stringContaining(`Subscription/${stray.id} also runs Bot/${first.botId}`)]);
  });

  test('warns about missing project features instead of failing', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum, []);

    const result = await setupProject(medplum, { projectId: project.id });

    expect(result.warnings).toEqual([
      expect.stringContaining("'bots' feature"),
      expect.stringContaining("'cron' feature"),
      expect.stringContaining("'transaction-bundles' feature"),
    ]);
    // Without a schedule, the missing cron feature does not matter.
    const again = await setupProject(medplum, { projectId: project.id, cronString: null });
    expect(again.warnings.some((w) => w.includes("'cron'"))).toBe(false);
  });

  test('bad options fail before anything is written', async () => {
    const medplum = createLocalMedplum();
    const project = await newProject(medplum);
    const writes = medplum.stats.writes;

    await expect(setupProject(medplum, { projectId: project.id, cronString: 'every 5 minutes' })).rejects.toThrow(/Invalid cron string/);
    await expect(setupProject(medplum, { projectId: project.id, timeoutSeconds: 0 })).rejects.toThrow(/timeout/);
    await expect(setupProject(medplum, { projectId: project.id, timeoutSeconds: 60, timeBudgetSeconds: 60 })).rejects.toThrow(/time budget/);
    await expect(setupProject(medplum, { projectId: project.id, identifierBase: 'not a uri' })).rejects.toThrow(/identifierBase/);
    expect(medplum.stats.writes).toBe(writes);
  });

  test('a project it cannot read gives an error that says what the client needs', async () => {
    const medplum = createLocalMedplum();
    await expect(setupProject(medplum, { projectId: 'no-such-project' })).rejects.toThrow(/Project\/no-such-project.*project admin/s);
  });
});

describe('setup and deploy without connection settings', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  // Empty values count as missing; dotenv never overrides a variable that is present, even empty,
  // so a developer's .env file cannot leak into these tests.
  function clearConnection(partial: Record<string, string> = {}): void {
    for (const name of ['MEDPLUM_BASE_URL', 'MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET']) {
      vi.stubEnv(name, partial[name] ?? '');
    }
  }

  test('npm run setup names every missing variable before connecting', async () => {
    clearConnection();
    const out: string[] = [];
    await expect(setupMain([], (line) => out.push(line))).rejects.toThrow(
      'Missing MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET: set them in the environment or a .env file'
    );
    expect(out).toEqual([]);
  });

  test('npm run setup names only the missing ones', async () => {
    clearConnection({ MEDPLUM_BASE_URL: 'https://medplum.example.org/' });
    await expect(setupMain([], () => undefined)).rejects.toThrow(/^Missing MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET:/);
  });

  test('npm run deploy names every missing variable before building or calling the CLI', async () => {
    clearConnection();
    const run = vi.fn(async () => 0);
    const log = vi.fn();
    await expect(deployBots({ run, log })).rejects.toThrow(
      'Missing MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET'
    );
    expect(run).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
  });

  test('npm run deploy with only the secret missing names it', async () => {
    clearConnection({ MEDPLUM_BASE_URL: 'https://medplum.example.org/', MEDPLUM_CLIENT_ID: 'abc' });
    const run = vi.fn(async () => 0);
    await expect(deployBots({ run, log: () => undefined })).rejects.toThrow(/^Missing MEDPLUM_CLIENT_SECRET:/);
    expect(run).not.toHaveBeenCalled();
  });
});
