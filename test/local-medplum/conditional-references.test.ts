import type { Encounter, Observation, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, outcomeStatus, patient, rejection, statuses, SYSTEM, upsertEntry } from './helpers';

function observation(subject: string): Observation {
  return { resourceType: 'Observation', status: 'final', code: { text: 'Weight' }, subject: { reference: subject } };
}

describe('rule c: conditional references in resource bodies are resolved on every write', () => {
  test('exactly one match is rewritten to Type/id with display', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const homer = await medplum.createResource<Patient>(patient('P001', { name: [{ given: ['Homer'], family: 'Simpson' }] }));
    const obs = await medplum.createResource(observation(`Patient?identifier=${SYSTEM}|P001`));
    expect(obs.subject).toEqual({ reference: `Patient/${homer.id}`, display: 'Homer Simpson' });
    const stored = await medplum.readResource('Observation', obs.id);
    expect(stored.subject?.reference).toBe(`Patient/${homer.id}`);
    expect(await medplum.searchResources('Observation', { subject: `Patient/${homer.id}` })).toHaveLength(1);
  });

  test('no match fails with 400 and the server message', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const ref = `Patient?identifier=${SYSTEM}|NOPE`;
    const err = await rejection(medplum.createResource(observation(ref)));
    expect(outcomeStatus(err)).toBe(400);
    expect(err.outcome.issue[0].details?.text).toBe(`Conditional reference '${ref}' did not match any resources`);
    expect(medplum.allResources('Observation')).toHaveLength(0);
  });

  test('several matches fail with 400 "matched multiple resources"', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    await medplum.createResource<Patient>(patient('TWIN'));
    await medplum.createResource<Patient>(patient('TWIN'));
    const ref = `Patient?identifier=${SYSTEM}|TWIN`;
    const err = await rejection(medplum.createResource(observation(ref)));
    expect(err.outcome.issue[0].details?.text).toBe(`Conditional reference '${ref}' matched multiple resources`);
  });

  test('in batch entries too; the router runs creates before updates, as on the server', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const entries = [
      upsertEntry('E1'),
      { request: { method: 'POST' as const, url: 'Observation' }, resource: observation(`Patient?identifier=${SYSTEM}|E1`) },
    ];
    // The POST runs before the conditional PUT that would create its subject, so it finds nothing.
    expect(statuses(await medplum.executeBatch(batch(entries)))).toEqual(['201', '400']);
    const again = await medplum.executeBatch(batch(entries));
    expect(statuses(again)).toEqual(['200', '201']);
    const [pat] = medplum.allResources<Patient>('Patient');
    expect((again.entry?.[1]?.resource as Observation).subject?.reference).toBe(`Patient/${pat.id}`);
  });

  test('references nested in arrays and in updates are resolved', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const pat = await medplum.createResource<Patient>(patient('E2'));
    const prac = await medplum.createResource({
      resourceType: 'Practitioner',
      identifier: [{ system: 'https://example.org/npi', value: '123' }],
    });
    const enc = await medplum.createResource<Encounter>({
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: `Patient?identifier=${SYSTEM}|E2` },
      participant: [{ individual: { reference: 'Practitioner?identifier=https://example.org/npi|123' } }],
    });
    expect(enc.subject?.reference).toBe(`Patient/${pat.id}`);
    expect(enc.participant?.[0]?.individual?.reference).toBe(`Practitioner/${prac.id}`);

    const updated = await medplum.updateResource<Encounter>({
      ...enc,
      subject: { reference: `Patient?identifier=${SYSTEM}|E2` },
      status: 'cancelled',
    });
    expect(updated.subject?.reference).toBe(`Patient/${pat.id}`);
    const err = await rejection(
      medplum.updateResource<Encounter>({ ...updated, subject: { reference: `Patient?identifier=${SYSTEM}|E3` } })
    );
    expect(outcomeStatus(err)).toBe(400);
  });
});
