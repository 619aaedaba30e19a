import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, outcomeStatus, outcomeText, patient, rejection, statuses } from './helpers';

describe('rule b: every create and update is validated', () => {
  test('an invalid create fails with 400 and the issue text, and stores nothing', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const err = await rejection(medplum.createResource<Patient>(patient('V1', { birthDate: '1990-13-45' })));
    expect(outcomeStatus(err)).toBe(400);
    expect(err.message).toMatch(/Invalid date.*\(Patient\.birthDate\)/);
    expect(err.outcome.issue[0].expression).toEqual(['Patient.birthDate']);
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('an unknown property is refused', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const err = await rejection(medplum.createResource({ resourceType: 'Patient', nickname: 'x' } as Patient));
    expect(outcomeText(err)).toContain('Invalid additional property "nickname"');
  });

  test('an invalid update fails and leaves the stored version as it was', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const created = await medplum.createResource<Patient>(patient('V2', { birthDate: '1990-01-01' }));
    const err = await rejection(medplum.updateResource<Patient>({ ...created, birthDate: 'yesterday' }));
    expect(outcomeStatus(err)).toBe(400);
    const stored = await medplum.readResource('Patient', created.id);
    expect(stored.birthDate).toBe('1990-01-01');
    expect(stored.meta?.versionId).toBe(created.meta?.versionId);
  });

  test('in a batch only the invalid entry fails, with its OperationOutcome', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const response = await medplum.executeBatch(
      batch([
        { request: { method: 'POST', url: 'Patient' }, resource: patient('V3') },
        { request: { method: 'POST', url: 'Patient' }, resource: patient('V4', { birthDate: '31/12/1990' }) },
      ])
    );
    expect(statuses(response)).toEqual(['201', '400']);
    const outcome = response.entry?.[1]?.response?.outcome;
    expect(outcome?.issue?.[0]?.details?.text).toMatch(/Invalid date/);
    expect(outcome?.issue?.[0]?.expression).toEqual(['Patient.birthDate']);
    expect(medplum.allResources('Patient')).toHaveLength(1);
  });
});
