import type { Patient } from '@medplum/fhirtypes';
import { sleep } from '@medplum/core';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, patient, rawFetch, statuses, SYSTEM, upsertEntry } from './helpers';

describe('rule g: an update that changes nothing creates no new version', () => {
  test('updateResource with the same content returns the stored version unchanged', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const created = await medplum.createResource<Patient>(patient('G1', { name: [{ family: 'Simpson', given: ['Homer'] }] }));
    const writes = medplum.stats.writes;
    await sleep(5);
    // Same content, keys in another order, and stale server meta: still no change.
    const same = await medplum.updateResource<Patient>({
      name: [{ given: ['Homer'], family: 'Simpson' }],
      identifier: [{ value: 'G1', system: SYSTEM }],
      resourceType: 'Patient',
      id: created.id,
      meta: { versionId: 'stale', lastUpdated: '2000-01-01T00:00:00.000Z' },
    });
    expect(same.meta?.versionId).toBe(created.meta?.versionId);
    expect(same.meta?.lastUpdated).toBe(created.meta?.lastUpdated);
    expect(medplum.stats.writes).toBe(writes);
    expect((await medplum.readHistory('Patient', created.id)).entry).toHaveLength(1);

    const response = await rawFetch(medplum, 'PUT', `fhir/R4/Patient/${created.id}`, created);
    expect(response.status).toBe(200);
  });

  test('a changed update gets a new versionId and lastUpdated', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const created = await medplum.createResource<Patient>(patient('G2'));
    await sleep(5);
    const changed = await medplum.updateResource<Patient>({ ...created, gender: 'female' });
    expect(changed.meta?.versionId).not.toBe(created.meta?.versionId);
    expect(changed.meta?.lastUpdated).not.toBe(created.meta?.lastUpdated);
    expect((await medplum.readHistory('Patient', created.id)).entry).toHaveLength(2);
  });

  test('conditional PUTs: unchanged rows answer 200 with the same version, changed rows a new one', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const first = await medplum.executeBatch(batch([upsertEntry('G3'), upsertEntry('G4')]));
    expect(statuses(first)).toEqual(['201', '201']);
    const versions = first.entry?.map((e) => e.resource?.meta?.versionId);
    await sleep(5);

    const second = await medplum.executeBatch(batch([upsertEntry('G3'), upsertEntry('G4', { gender: 'male' })]));
    expect(statuses(second)).toEqual(['200', '200']);
    expect(second.entry?.[0]?.resource?.meta?.versionId).toBe(versions?.[0]);
    expect(second.entry?.[1]?.resource?.meta?.versionId).not.toBe(versions?.[1]);

    const upserted = await medplum.upsertResource(patient('G3'), { identifier: `${SYSTEM}|G3` });
    expect(upserted.meta?.versionId).toBe(versions?.[0]);
  });
});
