import type { AccessPolicyInteraction } from '@medplum/core';
import { satisfiedAccessPolicy } from '@medplum/core';
import type { AccessPolicy, Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test } from 'vitest';
import { JOB } from '../../src/lib/jobs/task-ledger';
import { ensureDefinitionsIndexed } from '../../src/lib/local-medplum/definitions';
import { botAccessPolicyResources, DEFAULT_DATA_RESOURCE_TYPES, IMPORT_TASK_CRITERIA } from '../../src/setup/bot-access-policy';

/**
 * The bot's AccessPolicy: its exact rules, and what they let the bot do, checked with the function
 * Medplum's server itself uses to decide (@medplum/core `satisfiedAccessPolicy`, called from
 * `Repository.canPerformInteraction` in packages/server/src/fhir/repo.ts).
 */

const BOT_ID = '0b7e6a52-1f7c-4f4e-9d43-6a3f0f1e2c11';
const OTHER_BOT_ID = '5d1c2b3a-0000-4000-8000-000000000002';
const ALL: AccessPolicyInteraction[] = ['read', 'vread', 'history', 'search', 'create', 'update', 'delete'];

const policy: AccessPolicy = { resourceType: 'AccessPolicy', resource: botAccessPolicyResources({ botId: BOT_ID }) };

/** The interactions the policy allows on one resource. */
function allowed(resource: Resource): AccessPolicyInteraction[] {
  return ALL.filter((interaction) => satisfiedAccessPolicy(resource, interaction, policy));
}

function importTask(code: string, system: string = JOB.codeSystem): Resource {
  return { resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [{ system, code }] } };
}

beforeAll(() => {
  // Criteria are matched through the search parameters, as on the server.
  ensureDefinitionsIndexed();
});

describe('the import-csv bot access policy', () => {
  test('lists exactly what the bot uses, with criteria on Task and Bot', () => {
    expect(botAccessPolicyResources({ botId: BOT_ID })).toEqual([
      { resourceType: 'DocumentReference', interaction: ['read', 'search'] },
      { resourceType: 'Binary', interaction: ['read', 'create'] },
      { resourceType: 'Task', criteria: 'Task?code=urn:medplum-csv-import|', interaction: ['read', 'search', 'create', 'update'] },
      { resourceType: 'Patient', interaction: ['read', 'search', 'create', 'update', 'delete'] },
      { resourceType: 'Condition', interaction: ['read', 'search', 'create', 'update', 'delete'] },
      { resourceType: 'Encounter', interaction: ['read', 'search', 'create', 'update', 'delete'] },
      { resourceType: 'ClinicalImpression', interaction: ['read', 'search', 'create', 'update', 'delete'] },
      { resourceType: 'CodeSystem', interaction: ['read', 'search', 'create', 'update', 'delete'] },
      { resourceType: 'ConceptMap', interaction: ['read', 'search', 'create', 'update', 'delete'] },
      { resourceType: 'Bot', criteria: `Bot?_id=${BOT_ID}`, interaction: ['read'] },
      { resourceType: 'AsyncJob', interaction: ['create'] },
    ]);
    expect(IMPORT_TASK_CRITERIA).toBe(`Task?code=${JOB.codeSystem}|`);
  });

  test('every rule names its type and its interactions: no wildcard type, no rule that allows everything, delete only on the imported types', () => {
    for (const rule of botAccessPolicyResources({ botId: BOT_ID })) {
      expect(rule.resourceType).not.toBe('*');
      expect(rule.interaction?.length).toBeGreaterThan(0); // a rule without `interaction` would allow all of them
      if (!(DEFAULT_DATA_RESOURCE_TYPES as readonly string[]).includes(rule.resourceType)) {
        expect(rule.interaction, rule.resourceType).not.toContain('delete');
      }
      expect(rule.readonly).toBeUndefined();
    }
  });

  test("Tasks: any code of the import's code system, nothing else", () => {
    expect(allowed(importTask(JOB.code))).toEqual(['read', 'search', 'create', 'update']);
    // The ledger may use more codes of its system.
    expect(allowed(importTask('csv-import-continuation'))).toEqual(['read', 'search', 'create', 'update']);
    expect(allowed(importTask(JOB.code, 'http://example.org/other-workflow'))).toEqual([]);
    expect(allowed({ resourceType: 'Task', status: 'requested', intent: 'order' })).toEqual([]);
  });

  test('Bot: reading itself (its timeout; $execute on itself reads it as the caller), no other Bot, no writes', () => {
    expect(allowed({ resourceType: 'Bot', id: BOT_ID, name: 'import-csv' })).toEqual(['read']);
    expect(allowed({ resourceType: 'Bot', id: OTHER_BOT_ID, name: 'import-csv' })).toEqual([]);
  });

  test('AsyncJob: created by $execute with Prefer: respond-async, never read', () => {
    expect(allowed({ resourceType: 'AsyncJob', status: 'accepted', request: 'x', requestTime: '2026-01-01T00:00:00Z' })).toEqual(['create']);
  });

  test('uploads are read and searched, never written (the bot cannot trigger itself); Binary read and create', () => {
    expect(allowed({ resourceType: 'DocumentReference', status: 'current', content: [] })).toEqual(['read', 'search']);
    expect(allowed({ resourceType: 'Binary', contentType: 'text/csv' })).toEqual(['read', 'create']);
  });

  test('the imported data: read, search, create, update (an update reads the stored version), delete (copies made in a race)', () => {
    for (const resourceType of DEFAULT_DATA_RESOURCE_TYPES) {
      expect(allowed({ resourceType } as Resource)).toEqual(['read', 'search', 'create', 'update', 'delete']);
    }
  });

  test('nothing else: admin resources, Subscriptions, other clinical data', () => {
    for (const resourceType of ['Project', 'ProjectMembership', 'AccessPolicy', 'ClientApplication', 'Subscription', 'Observation', 'AuditEvent'] as const) {
      expect(allowed({ resourceType } as Resource)).toEqual([]);
    }
  });

  test('the data types are a parameter (to be derived from the tables), and the Bot rule waits for the Bot id', () => {
    const rules = botAccessPolicyResources({ dataResourceTypes: ['Observation'] });
    const types = rules.map((r) => r.resourceType);
    expect(types).toEqual(['DocumentReference', 'Binary', 'Task', 'Observation', 'AsyncJob']);
    expect(rules.find((r) => r.resourceType === 'Observation')?.interaction).toEqual(['read', 'search', 'create', 'update', 'delete']);
  });
});
