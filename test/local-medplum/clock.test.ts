import type { BundleEntry, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { createFakeClock } from '../helpers/clock';
import { batch, patient, statuses, upsertEntry } from './helpers';

describe('the server clock: latency and simulated server time', () => {
  test('a 500-entry batch at 3 ms per entry advances the fake clock by 1.5 s, in no real time', async () => {
    const clock = createFakeClock(0);
    const medplum = createLocalMedplum({ maxRetries: 0, clock, serverTime: { perEntryMs: 3 } });
    const started = performance.now();
    const entries = Array.from({ length: 500 }, (_, i) => upsertEntry('ST' + i));
    expect(statuses(await medplum.executeBatch(batch(entries))).every((s) => s === '201')).toBe(true);
    expect(clock.now()).toBe(1500);
    expect(performance.now() - started).toBeLessThan(1500);

    // Any other request counts as one entry.
    await medplum.searchResources('Patient');
    expect(clock.now()).toBe(1503);
  });

  test('nested bundle entries count too; perRequestMs is added once per request', async () => {
    const clock = createFakeClock(0);
    const medplum = createLocalMedplum({ maxRetries: 0, clock, serverTime: { perRequestMs: 10, perEntryMs: 1 } });
    const nested: BundleEntry = {
      request: { method: 'POST', url: '/' },
      resource: batch([upsertEntry('N1'), upsertEntry('N2')], 'transaction'),
    };
    await medplum.executeBatch(batch([upsertEntry('O1'), nested]));
    // 10 per request + 1 per entry: 2 outer entries and the 2 inside the nested transaction.
    expect(clock.now()).toBe(10 + 4);
  });

  test('latencyMs is spent on the clock before the request queues', async () => {
    const clock = createFakeClock(0);
    const medplum = createLocalMedplum({ maxRetries: 0, clock, latencyMs: 40, serverTime: { perRequestMs: 5 } });
    for (let i = 0; i < 3; i++) {
      await medplum.createResource<Patient>(patient('LT' + i));
    }
    expect(clock.now()).toBe(3 * 45);
  });

  test('meta.lastUpdated comes from the server clock', async () => {
    const clock = createFakeClock(Date.parse('2030-06-01T08:00:00Z'));
    const medplum = createLocalMedplum({ maxRetries: 0, clock });
    const created = await medplum.createResource<Patient>(patient('LU1'));
    expect(created.meta?.lastUpdated).toBe('2030-06-01T08:00:00.000Z');
    clock.advance(90_000);
    const updated = await medplum.updateResource<Patient>({ ...created, gender: 'other' });
    expect(updated.meta?.lastUpdated).toBe('2030-06-01T08:01:30.000Z');
  });

  test('the fake clock helper: sleep and advance move time forward only', async () => {
    const clock = createFakeClock(100);
    await clock.sleep(50);
    clock.advance(25);
    await clock.sleep(-10);
    expect(clock.now()).toBe(175);
  });
});
