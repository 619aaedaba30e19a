import type { MedplumClient, WithId } from '@medplum/core';
import { getReferenceString, normalizeErrorString, resolveId } from '@medplum/core';
import type {
  AccessPolicy,
  Bot,
  Project,
  ProjectMembership,
  ProjectSetting,
  Subscription,
} from '@medplum/fhirtypes';
import { isDeepStrictEqual } from 'node:util';
import { BUDGET_SHARE } from '../lib/jobs/budget';
import { resolveSettings } from '../lib/settings';
import type { MappingDataAccess } from './bot-access-policy';
import { botAccessPolicyResources, mappingDataAccess } from './bot-access-policy';
import type { PlannedMappings, StoredMappingsResult } from './mapping-libraries';
import { ensureMappingLibraries, planMappings, storedMappingsInProject } from './mapping-libraries';
import type { SubscriptionInteraction } from './upload-subscriptions';
import {
  describeSubscription,
  interactionsOf,
  managedSubscriptions,
  SUBSCRIPTION_INTERACTIONS,
  wantedSubscription,
} from './upload-subscriptions';

/**
 * Everything the import-csv bot needs in a Medplum project besides its code, created or brought up
 * to date idempotently: the access policy, the Bot (with its ProjectMembership), its schedule and
 * timeout, the Subscriptions that run it on uploads, and the project secrets it reads.
 * `medplum bot deploy` (npm run deploy) then uploads the code; see docs/deploy.md.
 */

export const DEFAULT_BOT_NAME = 'import-csv';
/** Every 5 minutes; the cron run picks up uploads that are waiting or were interrupted. */
export const DEFAULT_CRON = '*/5 * * * *';
/** Seconds; Medplum's default is 10, too short to import a file of any size. */
export const DEFAULT_TIMEOUT_SECONDS = 60;
/** Lambda's ceiling; a vmcontext bot accepts the same field. */
export const MAX_TIMEOUT_SECONDS = 900;
export const SECRET_IDENTIFIER_BASE = 'IDENTIFIER_BASE';
export const SECRET_TIME_BUDGET = 'TIME_BUDGET_SECONDS';

export interface SetupOptions {
  /** Bot name (default `import-csv`, the name in medplum.config.json). */
  botName?: string;
  /** Target project; default: the project of the logged-in client (`medplum.getProject()`). */
  projectId?: string;
  /** Bot.cronString, 5 fields (default every 5 minutes). `null` removes the schedule. */
  cronString?: string | null;
  /** Bot.timeout in seconds (default 60). */
  timeoutSeconds?: number;
  /**
   * The TIME_BUDGET_SECONDS project secret. Default: 60% of the timeout, so that uploads run by the
   * Subscription (whose event does not carry the Bot, hence its timeout) get the same budget as cron
   * runs. `null` leaves the secret alone.
   */
  timeBudgetSeconds?: number | null;
  /** The IDENTIFIER_BASE project secret; left alone when undefined. */
  identifierBase?: string;
  /** Bot.runtimeVersion; left to the server's default when undefined. */
  runtimeVersion?: 'vmcontext' | 'awslambda';
  /** AccessPolicy name (default `<botName> bot`). */
  accessPolicyName?: string;
  /**
   * A mapping set to store in the project for the bot (one Library per mapping; mappings no
   * longer in the set are retired): a folder of mappings, or a built-in profile by name. Without
   * it the stored mappings are left alone, and the bot uses the built-in default profile when
   * there are none. The access policy is derived from the set the bot will use.
   */
  mappings?: { folder: string } | { profile: string };
  /** Progress lines (each action as it happens). */
  log?: (line: string) => void;
}

export type SetupActionKind = 'created' | 'updated' | 'kept';

export interface SetupAction {
  kind: SetupActionKind;
  /** e.g. `Bot/123`. */
  resource: string;
  /** What it is, e.g. `Bot 'import-csv'`. */
  description: string;
  /** For updates: the fields that changed. */
  changes?: string[];
}

export interface SetupResult {
  projectId: string;
  botId: string;
  accessPolicyId: string;
  membershipId?: string;
  subscriptionIds: Record<SubscriptionInteraction, string>;
  actions: SetupAction[];
  /** Things setup cannot fix itself (project features, stray Subscriptions, ...). */
  warnings: string[];
  /** True when anything was created or updated. */
  changed: boolean;
  /** The mapping set stored (with --mapping or --profile). */
  mappings?: StoredMappingsResult;
  /** The data types the policy lets the bot write and read, when derived from mappings (else the default profile's). */
  dataAccess?: MappingDataAccess;
}

interface ResolvedOptions {
  botName: string;
  projectId?: string;
  cronString: string | undefined;
  timeoutSeconds: number;
  timeBudgetSeconds: number | undefined;
  identifierBase: string | undefined;
  runtimeVersion: Bot['runtimeVersion'] | undefined;
  accessPolicyName: string;
  mappings: PlannedMappings | undefined;
  log: (line: string) => void;
}

/** Validates the options up front, so that a bad value fails before anything is written. */
export function resolveSetupOptions(options: SetupOptions = {}): ResolvedOptions {
  const botName = options.botName ?? DEFAULT_BOT_NAME;
  if (!botName.trim()) {
    throw new Error('The bot name must not be empty');
  }
  const cronString = options.cronString === null ? undefined : (options.cronString ?? DEFAULT_CRON).trim();
  if (cronString !== undefined && !isCronString(cronString)) {
    throw new Error(`Invalid cron string '${cronString}': use 5 fields (minute hour day month weekday), e.g. '${DEFAULT_CRON}'`);
  }
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > MAX_TIMEOUT_SECONDS) {
    throw new Error(`The bot timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}`);
  }
  let timeBudgetSeconds: number | undefined;
  if (options.timeBudgetSeconds !== null) {
    timeBudgetSeconds = options.timeBudgetSeconds ?? Math.max(2, Math.floor(timeoutSeconds * BUDGET_SHARE));
    if (!Number.isInteger(timeBudgetSeconds) || timeBudgetSeconds < 1 || timeBudgetSeconds >= timeoutSeconds) {
      throw new Error(`The time budget must be a whole number of seconds below the timeout (${timeoutSeconds} s)`);
    }
  }
  let identifierBase: string | undefined;
  if (options.identifierBase !== undefined) {
    // The bot validates the secret the same way; a bad value would fail every import.
    identifierBase = resolveSettings({ identifierBase: options.identifierBase }).identifierBase;
  }
  const runtimeVersion = options.runtimeVersion;
  if (runtimeVersion !== undefined && runtimeVersion !== 'vmcontext' && runtimeVersion !== 'awslambda') {
    throw new Error(`Unknown bot runtime '${String(runtimeVersion)}': use vmcontext or awslambda`);
  }
  return {
    botName,
    projectId: options.projectId,
    cronString,
    timeoutSeconds,
    timeBudgetSeconds,
    identifierBase,
    runtimeVersion,
    accessPolicyName: options.accessPolicyName ?? `${botName} bot`,
    // Read and checked here: a broken set fails before anything is written.
    mappings: options.mappings ? planMappings(options.mappings) : undefined,
    log: options.log ?? (() => undefined),
  };
}

/** Five whitespace-separated cron fields of digits, `*`, `,`, `-`, `/` (names like MON are allowed too). */
export function isCronString(value: string): boolean {
  const fields = value.trim().split(/\s+/);
  return fields.length === 5 && fields.every((f) => /^[\d*,\-/A-Za-z?]+$/.test(f));
}

const NO_CACHE = { cache: 'no-cache' } as const;

/**
 * Creates or updates, in the target project, what the import-csv bot needs. Running it twice
 * changes nothing the second time: every resource is found first (by name, or by endpoint and
 * criteria) and written only when it differs from what is wanted.
 *
 * The client must be logged in as a project admin (a ClientApplication whose membership has
 * Admin set): creating a Bot, changing memberships and project secrets are admin operations.
 */
export async function setupProject(medplum: MedplumClient, options: SetupOptions = {}): Promise<SetupResult> {
  const opts = resolveSetupOptions(options);
  const actions: SetupAction[] = [];
  const warnings: string[] = [];
  const record = (action: SetupAction): void => {
    actions.push(action);
    opts.log(describeAction(action));
  };

  const project = await readProject(medplum, opts.projectId);
  checkFeatures(project, opts, warnings);

  // The policy covers the mappings the bot will use: the set being stored, else those already
  // stored in the project, else (nothing stored) the built-in default profile's tables.
  const mappings = opts.mappings ?? (await storedMappingsInProject(medplum));
  const dataAccess = mappings ? mappingDataAccess(mappings.set, mappings.files) : undefined;
  if (mappings) {
    opts.log(`mappings: ${mappings.description}: ${mappings.set.tables.map((t) => t.name).join(', ')}`);
  }

  // The policy's Bot rule names the Bot, but the Bot's membership is created with the policy: a
  // new Bot gets a policy without a Bot rule first, which is completed once the Bot exists.
  const existingBot = await findBot(medplum, opts, warnings);
  let accessPolicy = await ensureAccessPolicy(medplum, opts, existingBot?.id, dataAccess, record, warnings);
  const bot = await ensureBot(medplum, project, existingBot, accessPolicy, opts, record, warnings);
  if (!existingBot) {
    accessPolicy = await ensureAccessPolicy(medplum, opts, bot.id, dataAccess, record, warnings);
  }
  const membership = await ensureMembership(medplum, project, bot, accessPolicy, record, warnings);
  const subscriptionIds = await ensureSubscriptions(medplum, bot, record, warnings);
  await ensureSecrets(medplum, project, opts, record);
  // Last: the policy already lets the bot read and write what the new mappings need.
  const stored = opts.mappings ? await ensureMappingLibraries(medplum, opts.mappings, record, warnings) : undefined;

  for (const warning of warnings) {
    opts.log(`warning: ${warning}`);
  }
  return {
    projectId: project.id,
    botId: bot.id,
    accessPolicyId: accessPolicy.id,
    membershipId: membership?.id,
    subscriptionIds,
    actions,
    warnings,
    changed: actions.some((a) => a.kind !== 'kept'),
    ...(stored ? { mappings: stored } : {}),
    ...(dataAccess ? { dataAccess } : {}),
  };
}

export function describeAction(action: SetupAction): string {
  const changes = action.changes?.length ? `: ${action.changes.join('; ')}` : '';
  return `${action.kind.padEnd(7)} ${action.description} (${action.resource})${changes}`;
}

type Recorder = (action: SetupAction) => void;

async function readProject(medplum: MedplumClient, projectId: string | undefined): Promise<WithId<Project>> {
  const id = projectId ?? medplum.getProject()?.id ?? resolveId(medplum.getProjectMembership()?.project);
  if (!id) {
    throw new Error(
      'Could not tell which project to set up: the login did not name one. Pass the project id (--project-id).'
    );
  }
  try {
    return await medplum.readResource('Project', id, NO_CACHE);
  } catch (err) {
    throw new Error(
      `Could not read Project/${id}: ${normalizeErrorString(err)}. Setup needs a project admin ` +
        '(Project Admin -> Clients -> your ClientApplication -> membership: tick Admin).',
      { cause: err }
    );
  }
}

function checkFeatures(project: Project, opts: ResolvedOptions, warnings: string[]): void {
  const features = project.features ?? [];
  if (!features.includes('bots')) {
    warnings.push(
      `Project/${project.id} does not have the 'bots' feature: the bot cannot be deployed or run until a super admin adds it (Project -> Edit -> Features).`
    );
  }
  if (opts.cronString && !features.includes('cron')) {
    warnings.push(
      `Project/${project.id} does not have the 'cron' feature: Bot.cronString is saved but never fires. Uploads are still imported by the Subscriptions, but waiting or interrupted ones stay pending until the next upload event or a manual $execute.`
    );
  }
  if (!features.includes('transaction-bundles')) {
    warnings.push(
      `Project/${project.id} does not have the 'transaction-bundles' feature: an encounter and its note are written as a batch, not atomically; a half-written pair is reported on its row and completed by re-importing the file.`
    );
  }
}

/** Exact-name matches of a name search (the server's string search is a case-insensitive prefix match). */
async function findByName<T extends AccessPolicy | Bot>(
  medplum: MedplumClient,
  resourceType: T['resourceType'],
  name: string
): Promise<WithId<T>[]> {
  const found = await medplum.searchResources(resourceType, { name, _count: '100' }, NO_CACHE);
  return (found as unknown as WithId<T>[]).filter((r) => r.name === name);
}

async function ensureAccessPolicy(
  medplum: MedplumClient,
  opts: ResolvedOptions,
  botId: string | undefined,
  dataAccess: MappingDataAccess | undefined,
  record: Recorder,
  warnings: string[]
): Promise<WithId<AccessPolicy>> {
  const wanted: AccessPolicy = {
    resourceType: 'AccessPolicy',
    name: opts.accessPolicyName,
    resource: botAccessPolicyResources({
      botId,
      ...(dataAccess ? { dataResourceTypes: dataAccess.writes, readResourceTypes: dataAccess.reads, storedMappings: true } : {}),
    }),
  };
  const description = `AccessPolicy '${opts.accessPolicyName}'`;
  const existing = await findByName<AccessPolicy>(medplum, 'AccessPolicy', opts.accessPolicyName);
  // Warned once: this runs a second time for a new Bot.
  if (existing.length > 1 && !warnings.some((w) => w.includes(`AccessPolicies are named '${opts.accessPolicyName}'`))) {
    warnings.push(
      `${existing.length} AccessPolicies are named '${opts.accessPolicyName}'; using ${getReferenceString(existing[0])}. Delete the others.`
    );
  }
  const current = existing[0];
  if (!current) {
    const created = await medplum.createResource(wanted);
    record({ kind: 'created', resource: getReferenceString(created), description });
    return created;
  }
  if (sameJson(current.resource, wanted.resource)) {
    record({ kind: 'kept', resource: getReferenceString(current), description });
    return current;
  }
  const updated = await medplum.updateResource({ ...current, resource: wanted.resource });
  record({ kind: 'updated', resource: getReferenceString(updated), description, changes: describeRuleChanges(current, wanted) });
  return updated;
}

/** Which resource types' rules differ, e.g. `rules added: Bot; rules changed: Task`. */
function describeRuleChanges(current: AccessPolicy, wanted: AccessPolicy): string[] {
  const byType = (policy: AccessPolicy): Map<string, unknown[]> => {
    const rules = new Map<string, unknown[]>();
    for (const rule of policy.resource ?? []) {
      rules.set(rule.resourceType, [...(rules.get(rule.resourceType) ?? []), rule]);
    }
    return rules;
  };
  const before = byType(current);
  const after = byType(wanted);
  const types = [...new Set([...after.keys(), ...before.keys()])];
  const changes = [
    ['rules added', types.filter((t) => !before.has(t))],
    ['rules removed', types.filter((t) => !after.has(t))],
    ['rules changed', types.filter((t) => before.has(t) && after.has(t) && !sameJson(before.get(t), after.get(t)))],
  ] as const;
  const described = changes.filter(([, list]) => list.length).map(([what, list]) => `${what}: ${list.join(', ')}`);
  // Same rules per type in another order still counts as a change of the stored list.
  return described.length ? described : ['rule order'];
}

/** The Bot named in the options, if the project has one. */
async function findBot(medplum: MedplumClient, opts: ResolvedOptions, warnings: string[]): Promise<WithId<Bot> | undefined> {
  const existing = await findByName<Bot>(medplum, 'Bot', opts.botName);
  if (existing.length > 1) {
    warnings.push(
      `${existing.length} Bots are named '${opts.botName}'; using ${getReferenceString(existing[0])}. Delete the others (npm run deploy deploys to one Bot only).`
    );
  }
  return existing[0];
}

async function ensureBot(
  medplum: MedplumClient,
  project: WithId<Project>,
  existing: WithId<Bot> | undefined,
  accessPolicy: WithId<AccessPolicy>,
  opts: ResolvedOptions,
  record: Recorder,
  warnings: string[]
): Promise<WithId<Bot>> {
  const description = `Bot '${opts.botName}'`;
  let bot = existing;
  let created = false;
  if (!bot) {
    // The admin endpoint creates the Bot's ProjectMembership (a plain FHIR create would not), with the policy.
    let made: WithId<Bot>;
    try {
      made = (await medplum.post(`admin/projects/${project.id}/bot`, {
        name: opts.botName,
        description: 'Imports CSV exports from a legacy EHR into FHIR (see docs/deploy.md)',
        accessPolicy: { reference: getReferenceString(accessPolicy) },
        ...(opts.runtimeVersion ? { runtimeVersion: opts.runtimeVersion } : {}),
      })) as WithId<Bot>;
    } catch (err) {
      throw new Error(
        `Could not create Bot '${opts.botName}' with admin/projects/${project.id}/bot: ${normalizeErrorString(err)}. ` +
          'The ClientApplication must be a project admin.',
        { cause: err }
      );
    }
    bot = await medplum.readResource('Bot', made.id, NO_CACHE);
    created = true;
  }

  const changes: string[] = [];
  const next: WithId<Bot> = { ...bot };
  if (bot.timeout !== opts.timeoutSeconds) {
    changes.push(`timeout ${bot.timeout ?? 'default'} -> ${opts.timeoutSeconds} s`);
    next.timeout = opts.timeoutSeconds;
  }
  if (bot.cronString !== opts.cronString) {
    changes.push(`cronString ${quote(bot.cronString)} -> ${quote(opts.cronString)}`);
    if (opts.cronString === undefined) {
      delete next.cronString;
    } else {
      next.cronString = opts.cronString;
    }
  }
  if (opts.runtimeVersion && bot.runtimeVersion !== opts.runtimeVersion) {
    changes.push(`runtimeVersion ${bot.runtimeVersion ?? 'default'} -> ${opts.runtimeVersion}`);
    next.runtimeVersion = opts.runtimeVersion;
  }
  if (bot.cronTiming) {
    warnings.push(`${getReferenceString(bot)} also has a cronTiming schedule; setup manages cronString only. Remove cronTiming if it is not wanted.`);
  }
  if (changes.length) {
    bot = await medplum.updateResource(next);
  }
  if (created) {
    record({ kind: 'created', resource: getReferenceString(bot), description: `${description} and its ProjectMembership`, changes });
  } else {
    record({ kind: changes.length ? 'updated' : 'kept', resource: getReferenceString(bot), description, changes });
  }
  return bot;
}

async function ensureMembership(
  medplum: MedplumClient,
  project: WithId<Project>,
  bot: WithId<Bot>,
  accessPolicy: WithId<AccessPolicy>,
  record: Recorder,
  warnings: string[]
): Promise<WithId<ProjectMembership> | undefined> {
  const found = await medplum.searchResources(
    'ProjectMembership',
    { profile: getReferenceString(bot), _count: '100' },
    NO_CACHE
  );
  const memberships = found.filter((m) => !m.project?.reference || m.project.reference === getReferenceString(project));
  const membership = memberships[0];
  if (!membership) {
    warnings.push(
      `${getReferenceString(bot)} has no ProjectMembership (it was not created with the admin API), so it cannot get the access policy and runs with the caller's rights. Delete it and run setup again.`
    );
    return undefined;
  }
  const description = `ProjectMembership of Bot '${bot.name}'`;
  const reference = getReferenceString(accessPolicy);
  const changes: string[] = [];
  if (membership.accessPolicy?.reference !== reference) {
    changes.push(`accessPolicy ${membership.accessPolicy?.reference ?? 'none'} -> ${reference}`);
  }
  if (membership.access?.length) {
    warnings.push(
      `${getReferenceString(membership)} also has parameterized access policies (ProjectMembership.access); they add to '${accessPolicy.name}'.`
    );
  }
  if (!changes.length) {
    record({ kind: 'kept', resource: getReferenceString(membership), description });
    return membership;
  }
  const updated = await medplum.updateResource({ ...membership, accessPolicy: { reference } });
  record({ kind: 'updated', resource: getReferenceString(updated), description, changes });
  return updated;
}

async function ensureSubscriptions(
  medplum: MedplumClient,
  bot: WithId<Bot>,
  record: Recorder,
  warnings: string[]
): Promise<Record<SubscriptionInteraction, string>> {
  const endpoint = getReferenceString(bot);
  const existing = await medplum.searchResources('Subscription', { url: endpoint, _count: '100' }, NO_CACHE);
  const ours = existing.filter((s) => s.channel?.endpoint === endpoint);
  const used = new Set<string>();
  const ids = {} as Record<SubscriptionInteraction, string>;

  for (const interaction of SUBSCRIPTION_INTERACTIONS) {
    const wanted = wantedSubscription(bot, interaction);
    const description = describeSubscription(interaction);
    const matches = managedSubscriptions(ours, interaction);
    const current = matches[0];
    if (!current) {
      const created = await medplum.createResource(wanted);
      record({ kind: 'created', resource: getReferenceString(created), description });
      ids[interaction] = created.id;
      continue;
    }
    used.add(current.id);
    for (const duplicate of matches.slice(1)) {
      used.add(duplicate.id);
      warnings.push(
        `${getReferenceString(duplicate)} duplicates ${getReferenceString(current)} (${interaction}); every upload event runs the bot twice. Delete it.`
      );
    }
    const changes: string[] = [];
    const next: WithId<Subscription> = { ...current };
    // criteria and extension: Subscriptions written by earlier versions of setup matched only
    // `contenttype=text/csv` exactly; they are brought up to the shared upload rule in place.
    for (const field of ['status', 'reason', 'criteria', 'channel', 'extension'] as const) {
      if (!sameJson(current[field], wanted[field])) {
        changes.push(describeSubscriptionChange(field, current, wanted));
        (next as Subscription)[field] = wanted[field] as never;
      }
    }
    if (!changes.length) {
      record({ kind: 'kept', resource: getReferenceString(current), description });
      ids[interaction] = current.id;
      continue;
    }
    const updated = await medplum.updateResource(next);
    record({ kind: 'updated', resource: getReferenceString(updated), description, changes });
    ids[interaction] = updated.id;
  }

  for (const other of ours.filter((s) => !used.has(s.id))) {
    warnings.push(
      `${getReferenceString(other)} also runs ${endpoint} (criteria ${other.criteria}, interactions ${interactionsOf(other).join(', ') || 'all'}); setup leaves it alone. Delete it if it is not wanted.`
    );
  }
  return ids;
}

function describeSubscriptionChange(field: keyof Subscription, current: Subscription, wanted: Subscription): string {
  switch (field) {
    case 'status':
      return `status ${current.status} -> ${wanted.status}`;
    case 'criteria':
      return `criteria ${current.criteria} -> ${wanted.criteria}`;
    case 'extension':
      return 'extensions (interaction, CSV upload FHIRPath criteria)';
    default:
      return field;
  }
}

async function ensureSecrets(
  medplum: MedplumClient,
  project: WithId<Project>,
  opts: ResolvedOptions,
  record: Recorder
): Promise<void> {
  const wanted: ProjectSetting[] = [];
  if (opts.identifierBase !== undefined) {
    wanted.push({ name: SECRET_IDENTIFIER_BASE, valueString: opts.identifierBase });
  }
  if (opts.timeBudgetSeconds !== undefined) {
    wanted.push({ name: SECRET_TIME_BUDGET, valueInteger: opts.timeBudgetSeconds });
  }
  if (!wanted.length) {
    return;
  }
  const secrets = [...(project.secret ?? [])];
  const changes: string[] = [];
  for (const setting of wanted) {
    const index = secrets.findIndex((s) => s.name === setting.name);
    if (index < 0) {
      secrets.push(setting);
      changes.push(`secret ${setting.name} added`);
    } else if (!sameJson(secrets[index], setting)) {
      secrets[index] = setting;
      changes.push(`secret ${setting.name} changed`);
    }
  }
  const description = `project secrets ${wanted.map((s) => s.name).join(', ')}`;
  if (!changes.length) {
    record({ kind: 'kept', resource: getReferenceString(project), description });
    return;
  }
  // Values never reach the output: only names.
  const updated = await medplum.updateResource({ ...project, secret: secrets });
  record({ kind: 'updated', resource: getReferenceString(updated), description, changes });
}

function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalizeJson(a), normalizeJson(b));
}

/** A JSON round trip, so that undefined members and key order do not count as differences. */
function normalizeJson(value: unknown): unknown {
  if (value === undefined) {
    return undefined;
  }
  return sortKeys(JSON.parse(JSON.stringify(value)));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sortKeys);
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])])
    );
  }
  return value;
}

function quote(value: string | undefined): string {
  return value === undefined ? 'none' : `'${value}'`;
}
