import type { Bot, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { outcomeStatus, patient, rejection, SYSTEM } from './helpers';

describe('rule a: starts empty, with the full R4 and Medplum definitions', () => {
  test('no seeded data and no MockClient search parameters or StructureDefinitions', async () => {
    const medplum = createLocalMedplum();
    for (const resourceType of ['Patient', 'Practitioner', 'Observation', 'Condition', 'Project'] as const) {
      expect(await medplum.searchResources(resourceType, { _count: '1000' })).toHaveLength(0);
    }
    // MockClient's own initialisation would store 33 SearchParameters and its StructureDefinitions.
    expect(await medplum.searchResources('SearchParameter', { _count: '1000' })).toHaveLength(0);
    expect(await medplum.searchResources('StructureDefinition', { _count: '1000' })).toHaveLength(0);
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('identifier search works for every resource type (full search parameters indexed)', async () => {
    const medplum = createLocalMedplum();
    // Patient-identifier is not among MockClient's 33 search parameters: without the full set,
    // the conditional PUT matches nothing and the second upsert duplicates.
    const first = await medplum.upsertResource(patient('A1'), { identifier: `${SYSTEM}|A1` });
    const second = await medplum.upsertResource(patient('A1', { gender: 'female' }), { identifier: `${SYSTEM}|A1` });
    expect(second.id).toBe(first.id);
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|A1` })).toHaveLength(1);
    const condition = await medplum.createResource({
      resourceType: 'Condition',
      subject: { reference: `Patient/${first.id}` },
      code: { text: 'x' },
    });
    const conditions = await medplum.searchResources('Condition', { subject: `Patient/${first.id}` });
    expect(conditions.map((c) => c.id)).toEqual([condition.id]);
  });

  test('an unknown search parameter is refused with 400, as on the server', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const err = await rejection(medplum.searchResources('Patient', { identifer: `${SYSTEM}|A1` }));
    expect(outcomeStatus(err)).toBe(400);
    expect(err.message).toContain('Unknown search parameter: identifer');
  });

  test('Medplum resource types validate (profiles-medplum indexed)', async () => {
    const medplum = createLocalMedplum();
    const bot = await medplum.createResource<Bot>({ resourceType: 'Bot', name: 'import-csv' });
    expect(bot.id).toBeDefined();
    const read = await medplum.readResource('Bot', bot.id);
    expect(read.name).toBe('import-csv');
  });

  test('separate instances do not share data', async () => {
    const a = createLocalMedplum();
    const b = createLocalMedplum();
    await a.createResource<Patient>(patient('S1'));
    expect(a.allResources('Patient')).toHaveLength(1);
    expect(b.allResources('Patient')).toHaveLength(0);
  });
});
