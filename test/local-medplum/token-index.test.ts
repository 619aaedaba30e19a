import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, patient, statuses, SYSTEM, upsertEntry } from './helpers';

function ids(resources: Patient[]): string[] {
  return resources.map((r) => r.id as string).sort();
}

describe('rule f: identifier lookups use a token index', () => {
  test('the index follows creates, updates, deletes and every spelling of the token', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const a = await medplum.createResource<Patient>(patient('IDX-A'));
    const b = await medplum.createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ value: 'IDX-B' }, { system: 'https://other.example/mrn', value: 'M-1' }],
    });
    expect(ids(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|IDX-A` }))).toEqual([a.id]);
    expect(ids(await medplum.searchResources('Patient', { identifier: 'IDX-A' }))).toEqual([a.id]);
    expect(ids(await medplum.searchResources('Patient', { identifier: '|IDX-B' }))).toEqual([b.id]);
    expect(ids(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|IDX-B` }))).toEqual([]);
    expect(ids(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|IDX-A,https://other.example/mrn|M-1` }))).toEqual(
      [a.id, b.id].sort()
    );

    await medplum.updateResource<Patient>({ ...a, identifier: [{ system: SYSTEM, value: 'IDX-A2' }] });
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|IDX-A` })).toHaveLength(0);
    expect(ids(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|IDX-A2` }))).toEqual([a.id]);

    await medplum.deleteResource('Patient', a.id as string);
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|IDX-A2` })).toHaveLength(0);
    // Other filters still apply to the candidates the index returns.
    expect(await medplum.searchResources('Patient', { identifier: '|IDX-B', gender: 'male' })).toHaveLength(0);
  });

  test('an OR list matches each candidate by the tokens that found it, commas and backslashes included', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const values = ['P,1', 'P\\2', 'p3', 'P4'];
    const stored = await Promise.all(values.map((value) => medplum.createResource<Patient>(patient(value))));
    const escape = (value: string): string => value.replace(/[\\,]/g, '\\$&');
    const list = ['P,1', 'P\\2', 'P3', 'P5'].map((value) => `${SYSTEM}|${escape(value)}`).join(',');
    // Case folded as the server folds it (p3 for P3); P4 is not asked for, P5 does not exist.
    expect(ids(await medplum.searchResources('Patient', { identifier: list }))).toEqual(ids(stored.slice(0, 3)));
    expect(ids(await medplum.searchResources('Patient', { identifier: list, gender: 'male' }))).toEqual([]);
  });

  test('conditional PUTs look at one candidate each instead of scanning every Patient', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const rows = 2_000;
    for (let start = 0; start < rows; start += 500) {
      const entries = Array.from({ length: 500 }, (_, i) => upsertEntry('S' + (start + i)));
      expect(statuses(await medplum.executeBatch(batch(entries))).every((s) => s === '201')).toBe(true);
    }
    const afterCreate = medplum.stats.scanned;
    const entries = Array.from({ length: 500 }, (_, i) => upsertEntry('S' + i, { gender: 'unknown' }));
    expect(statuses(await medplum.executeBatch(batch(entries))).every((s) => s === '200')).toBe(true);
    // A full scan would examine ~2,000 Patients per lookup (millions in all); the index examines 1.
    expect(afterCreate).toBeLessThanOrEqual(rows);
    expect(medplum.stats.scanned - afterCreate).toBeLessThanOrEqual(2 * 500);
    expect(medplum.allResources('Patient')).toHaveLength(rows);
  });

  test('10,000 conditional PUTs in batches of 500 stay fast (linear)', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const started = performance.now();
    for (let start = 0; start < 10_000; start += 500) {
      const entries = Array.from({ length: 500 }, (_, i) => upsertEntry('L' + (start + i)));
      await medplum.executeBatch(batch(entries));
    }
    const seconds = (performance.now() - started) / 1000;
    expect(medplum.allResources('Patient')).toHaveLength(10_000);
    // About 1 s here; scanning would take many minutes (MockClient: ~2 minutes for 5,000).
    expect(seconds).toBeLessThan(30);
  });
});
