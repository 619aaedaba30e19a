import type { AccessPolicyResource, ResourceType } from '@medplum/fhirtypes';
import { STORED_MAPPINGS } from '../lib/jobs/stored-mappings';
import { JOB } from '../lib/jobs/task-ledger';
import type { MappingFileSource, MappingSet } from '../lib/mapping/load';
import { MAPPING_SUFFIX } from '../lib/mapping/load';

/**
 * The import-csv bot's AccessPolicy: what the bot uses, and nothing else. Every rule below was
 * checked against Medplum's server source (repository medplum/medplum, packages/server):
 *
 * - `read` is needed for every update. `Repository.updateResourceImpl` (src/fhir/repo.ts) loads the
 *   stored version through `checkExistingResource` -> `readResourceImpl`, which throws `forbidden`
 *   unless the policy supports `read` for the type, and reads it with the policy's `read` criteria
 *   as an SQL filter (`addSecurityFilters(..., READ)`). A conditional update (`PUT Type?search`,
 *   fhir-router `FhirRepository.conditionalUpdate`) is a search followed by that update or by a
 *   create. So the types the bot writes by (conditional) update keep `read`, `search`, `create`
 *   and `update`; `read` is not a grant the bot could drop.
 * - Criteria are checked for every interaction: on searches and reads as SQL filters, on writes
 *   against the stored version (`canPerformInteraction`) and the new one (`isResourceWriteable`),
 *   with @medplum/core's `satisfiedAccessPolicy` / `matchesSearchRequest`.
 * - Binary cannot carry criteria: it has no search parameters, and both the server
 *   (`addAccessPolicyFilters`) and core (`matchesAccessPolicyResourcePolicy`) skip criteria for it.
 * - No rule deletes anything.
 */

type Interaction = NonNullable<AccessPolicyResource['interaction']>[number];

/**
 * The clinical and terminology types the import writes, by conditional update. Kept as data (not
 * spelled out in the rules) so that it can be derived from the tables' mappings.
 */
export const DEFAULT_DATA_RESOURCE_TYPES = [
  'Patient',
  'Condition',
  'Encounter',
  'ClinicalImpression',
  'CodeSystem',
  'ConceptMap',
] as const satisfies readonly AccessPolicyResource['resourceType'][];

/** Conditional update = search, then update (which reads the stored version) or create. */
/**
 * What the import does with the types it writes: looks them up, creates, updates by id, and
 * deletes the copies two importers racing on the same new rows both created (the plan-first
 * writer's check after a create keeps one; src/lib/plan/writer.ts, settleRaces).
 */
const WRITTEN_TYPE: Interaction[] = ['read', 'search', 'create', 'update', 'delete'];

/** Types only looked up: stored code maps, references by identifier to what the set does not write. */
const LOOKUP: Interaction[] = ['read', 'search'];

/**
 * The resource types each built-in TypeScript table writes (a mapping set includes them by name in
 * its profile.json; mappings declare their own). Every table of BUILT_IN_TABLES must be listed:
 * test/setup/mapping-access.test.ts checks it.
 */
export const BUILT_IN_TABLE_WRITES: Readonly<Record<string, readonly ResourceType[]>> = {
  conditions: ['CodeSystem', 'ConceptMap'],
};

/** The mapping Libraries the bot reads at the start of every run (its stored mappings). */
export const MAPPING_LIBRARY_CRITERIA = `Library?identifier=${STORED_MAPPINGS.identifierSystem}|`;

/** What a mapping set makes the bot do with the project's data. */
export interface MappingDataAccess {
  /** Written by conditional update: the mappings' resource types and those of the built-in tables the set includes. */
  writes: ResourceType[];
  /** Only read: stored code maps (CodeSystem, ConceptMap) and types referenced by identifier, when not written. */
  reads: ResourceType[];
}

/**
 * The data rights a loaded mapping set needs: its `writes`, the built-in tables' writes, and what it
 * only looks up: `codeSystem` / `conceptMap` code maps, and `{ "type", "identifier" }` references
 * (Medplum resolves a conditional reference with the writer's rights, so it needs `search` on the
 * type). `files`: the set's files, as loaded.
 */
export function mappingDataAccess(set: MappingSet, files: readonly MappingFileSource[]): MappingDataAccess {
  const writes = new Set<string>(set.writes);
  const mapped = new Set(set.mappings.map((m) => m.table.name));
  for (const table of set.tables.filter((t) => !mapped.has(t.name))) {
    const types = BUILT_IN_TABLE_WRITES[table.name];
    if (!types) {
      throw new Error(`the built-in table '${table.name}' is not in BUILT_IN_TABLE_WRITES (src/setup/bot-access-policy.ts): say what it writes there`);
    }
    types.forEach((t) => writes.add(t));
  }
  const reads = new Set<string>();
  for (const file of files.filter((f) => f.name.endsWith(MAPPING_SUFFIX))) {
    lookupsOf(JSON.parse(file.text) as unknown).forEach((t) => reads.add(t));
  }
  return {
    writes: [...writes].sort() as ResourceType[],
    reads: [...reads].filter((t) => !writes.has(t)).sort() as ResourceType[],
  };
}

/** Types a (loaded, so well-formed) mapping reads without writing them. */
function lookupsOf(json: unknown): string[] {
  const found: string[] = [];
  const object = (value: unknown): Record<string, unknown> | undefined =>
    value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  for (const code of Object.values(object(object(json)?.codes) ?? {})) {
    if (object(code)?.codeSystem !== undefined) {
      found.push('CodeSystem');
    }
    if (object(code)?.conceptMap !== undefined) {
      found.push('ConceptMap');
    }
  }
  const resources = object(json)?.resources;
  for (const resource of Array.isArray(resources) ? resources : []) {
    for (const value of Object.values(object(object(resource)?.elements) ?? {})) {
      const type = object(object(value)?.reference)?.type;
      if (typeof type === 'string') {
        found.push(type);
      }
    }
  }
  return found;
}

/**
 * Every Task of the import's own code system, whatever the code: the job ledger may use more
 * than one code. `system|` is the FHIR token form "any code of this system".
 */
export const IMPORT_TASK_CRITERIA = `Task?code=${JOB.codeSystem}|`;

/** The bot's own Bot resource only. */
export function ownBotCriteria(botId: string): string {
  return `Bot?_id=${botId}`;
}

export interface BotAccessPolicyOptions {
  /**
   * The bot's id. The policy is created before the Bot (the Bot's membership is created with
   * it), so the first version has no Bot rule at all; setup adds it once the Bot exists.
   */
  botId?: string;
  /** The types the import writes; default: those of the built-in tables. */
  dataResourceTypes?: readonly AccessPolicyResource['resourceType'][];
  /** Types the import only reads (stored code maps, references by identifier); default none. */
  readResourceTypes?: readonly AccessPolicyResource['resourceType'][];
  /** The project stores the bot's mappings: it reads the mapping Libraries (and their Binaries). */
  storedMappings?: boolean;
}

/**
 * The rules, in a fixed order (setup compares them with what is stored):
 * - DocumentReference: `read` (the upload an event or $execute names), `search` (the cron sweep).
 *   Never written, so the bot cannot trigger its own Subscriptions.
 * - Binary: `read` (downloads of uploads and of earlier rejected-rows files), `create` (new
 *   rejected-rows files). No criteria possible, see above.
 * - Task, with the import's code system as criteria: `search` (ledger lookups, the conditional
 *   create's If-None-Exist), `create`, `update` (version-checked claims and progress), and `read`
 *   because every update reads the stored version.
 * - The data types: looked up, created, updated by id (see above), and `delete` for the duplicates
 *   of a race between two importers, which the writer's check after a create removes. Types only
 *   looked up: `read`, `search`.
 * - Library, with the mapping identifier system as criteria, when the mappings are stored in the
 *   project: `read`, `search` (each run searches the active ones; their files are Binaries).
 * - Bot, this bot only: `read`. The bot reads its own Bot for its timeout, and `$execute` reads
 *   the Bot as the caller before running it (`getBotForRequest` -> `ctx.repo.readResource`, in
 *   src/fhir/operations/execute.ts), so the bot can call `$execute` on itself.
 * - AsyncJob: `create`. `$execute` with `Prefer: respond-async` creates the AsyncJob as the caller
 *   (`sendAsyncResponse` -> `new AsyncJobExecutor(ctx.repo).init(...)`, in
 *   src/fhir/operations/utils/asyncjobexecutor.ts); the server completes it with its system
 *   repository. AsyncJob's only search parameters are `type` and `status`, which cannot tell whose
 *   job it is, so there are no criteria. No `read`: the bot does not poll the job it starts.
 */
export function botAccessPolicyResources(options: BotAccessPolicyOptions = {}): AccessPolicyResource[] {
  const dataTypes = options.dataResourceTypes ?? DEFAULT_DATA_RESOURCE_TYPES;
  return [
    { resourceType: 'DocumentReference', interaction: ['read', 'search'] },
    { resourceType: 'Binary', interaction: ['read', 'create'] },
    { resourceType: 'Task', criteria: IMPORT_TASK_CRITERIA, interaction: ['read', 'search', 'create', 'update'] },
    ...dataTypes.map((resourceType) => ({ resourceType, interaction: [...WRITTEN_TYPE] })),
    ...(options.readResourceTypes ?? []).map((resourceType) => ({ resourceType, interaction: [...LOOKUP] })),
    ...(options.storedMappings ? [{ resourceType: 'Library', criteria: MAPPING_LIBRARY_CRITERIA, interaction: [...LOOKUP] }] : []),
    ...(options.botId ? [{ resourceType: 'Bot', criteria: ownBotCriteria(options.botId), interaction: ['read'] as Interaction[] }] : []),
    { resourceType: 'AsyncJob', interaction: ['create'] },
  ];
}
