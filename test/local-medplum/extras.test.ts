import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, patient, upsertEntry } from './helpers';

describe('rule j: latency, stats and allResources', () => {
  test('latencyMs is added to every request, and concurrent requests overlap their latency', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, latencyMs: 40 });
    let started = performance.now();
    for (let i = 0; i < 5; i++) {
      await medplum.createResource<Patient>(patient('LAT' + i));
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(5 * 40 - 5);

    started = performance.now();
    await Promise.all(Array.from({ length: 5 }, (_, i) => medplum.createResource<Patient>(patient('PAR' + i))));
    const parallel = performance.now() - started;
    expect(parallel).toBeGreaterThanOrEqual(35);
    expect(parallel).toBeLessThan(5 * 40);
  });

  test('stats count requests at the fetch layer and writes in the repository', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    expect(medplum.stats).toEqual({ requests: 0, writes: 0, scanned: 0, points: 0 });
    await medplum.executeBatch(batch([upsertEntry('ST1'), upsertEntry('ST2')]));
    await medplum.executeBatch(batch([upsertEntry('ST1'), upsertEntry('ST2', { gender: 'male' })]));
    await medplum.searchResources('Patient');
    expect(medplum.stats.requests).toBe(3);
    // Two creates and one changing update; the unchanged row is not a write.
    expect(medplum.stats.writes).toBe(3);
  });

  test('allResources returns every stored resource without paging, as copies', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const entries = Array.from({ length: 1200 }, (_, i) => upsertEntry('ALL' + i));
    await medplum.executeBatch(batch(entries.slice(0, 600)));
    await medplum.executeBatch(batch(entries.slice(600)));
    const requests = medplum.stats.requests;
    const all = medplum.allResources<Patient>('Patient');
    expect(all).toHaveLength(1200);
    expect(medplum.stats.requests).toBe(requests);
    all[0].gender = 'female';
    expect(medplum.allResources<Patient>('Patient')[0].gender).toBeUndefined();
  });
});
