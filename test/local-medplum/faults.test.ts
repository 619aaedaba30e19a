import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import type { FaultOptions } from '../../src/lib/local-medplum';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, outcomeStatus, patient, rawFetch, rejection, statuses } from './helpers';

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

function postEntries(prefix: string, count: number): ReturnType<typeof batch> {
  return batch(
    Array.from({ length: count }, (_, i) => ({
      request: { method: 'POST' as const, url: 'Patient' },
      resource: patient(prefix + i),
    }))
  );
}

describe('rule i: write quota', () => {
  test('a standalone write over the quota gets 429 throttled; the window resets after a minute', async () => {
    const time = clock();
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { writeQuotaPerMinute: 3, now: time.now } });
    for (let i = 0; i < 3; i++) {
      await medplum.createResource<Patient>(patient('Q' + i));
    }
    const err = await rejection(medplum.createResource<Patient>(patient('Q3')));
    expect(outcomeStatus(err)).toBe(429);
    expect(err.outcome.issue[0].code).toBe('throttled');
    expect(medplum.rateLimitStatus()).toEqual([
      expect.objectContaining({ name: 'fhirInteractions', remainingUnits: 0, secondsUntilReset: 60 }),
    ]);
    expect(medplum.allResources('Patient')).toHaveLength(3);

    // Reads are not charged, and carry the header too.
    time.advance(30_000);
    const read = await rawFetch(medplum, 'GET', 'fhir/R4/Patient');
    expect(read.status).toBe(200);
    expect(read.headers.get('ratelimit')).toBe('"fhirInteractions";r=0;t=30');

    time.advance(30_000);
    await medplum.createResource<Patient>(patient('Q4'));
    expect(medplum.rateLimitStatus()[0]).toMatchObject({ remainingUnits: 200, secondsUntilReset: 60 });
  });

  test('in a batch, the entry that hits the quota and every later entry get 429', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { writeQuotaPerMinute: 5, now: clock().now } });
    const response = await medplum.executeBatch(postEntries('B', 8));
    expect(statuses(response)).toEqual(['201', '201', '201', '201', '201', '429', '429', '429']);
    expect(response.entry?.[7]?.response?.outcome?.issue?.[0]?.code).toBe('throttled');
    expect(medplum.allResources('Patient')).toHaveLength(5);
  });

  test('a transaction that hits the quota is rolled back whole', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { writeQuotaPerMinute: 2, now: clock().now } });
    const err = await rejection(medplum.executeBatch({ ...postEntries('TQ', 3), type: 'transaction' }));
    expect(outcomeStatus(err)).toBe(429);
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('setFaults: import clean data first, then inject; undefined removes them', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    await medplum.executeBatch(postEntries('CLEAN', 10));
    expect(medplum.rateLimitStatus()).toEqual([]);
    medplum.setFaults({ writeQuotaPerMinute: 1, now: clock().now });
    await medplum.createResource<Patient>(patient('ONE'));
    await rejection(medplum.createResource<Patient>(patient('TWO')));
    medplum.setFaults(undefined);
    await medplum.createResource<Patient>(patient('THREE'));
    expect(medplum.allResources('Patient')).toHaveLength(12);
  });
});

describe('rule i: server and network errors', () => {
  test('serverErrorRate 1: every request is answered 500 or 503 with an OperationOutcome, nothing is written', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { serverErrorRate: 1, seed: 7 } });
    const codes = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('SE' + i));
      codes.add(response.status);
      const body = await response.json();
      expect(body.resourceType).toBe('OperationOutcome');
    }
    expect([...codes].sort()).toEqual([500, 503]);
    await rejection(medplum.createResource<Patient>(patient('SE')));
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('the same seed gives the same faults; another seed gives others', async () => {
    const run = async (faults: FaultOptions): Promise<string> => {
      const medplum = createLocalMedplum({ maxRetries: 0, faults });
      const outcomes: string[] = [];
      for (let i = 0; i < 40; i++) {
        try {
          const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('D' + i));
          outcomes.push(String(response.status));
        } catch (err) {
          outcomes.push((err as Error).message);
        }
      }
      return outcomes.join(',');
    };
    const faults = { serverErrorRate: 0.3, networkErrorRate: 0.2, seed: 42 };
    const first = await run(faults);
    expect(first).toContain('201');
    expect(first).toContain('fetch failed');
    expect(first).toMatch(/50[03]/);
    expect(await run(faults)).toBe(first);
    expect(await run({ ...faults, seed: 43 })).not.toBe(first);
  });

  test('networkErrorRate 1: fetch rejects with TypeError("fetch failed") before anything is written', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { networkErrorRate: 1 } });
    const err = await medplum.createResource<Patient>(patient('NE')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe('fetch failed');
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('networkErrorAfterWriteRate 1: the write happens but the response is lost', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { networkErrorAfterWriteRate: 1 } });
    const err = await medplum.createResource<Patient>(patient('NA')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(medplum.allResources('Patient')).toHaveLength(1);
    // Reads are not affected.
    expect(await medplum.searchResources('Patient')).toHaveLength(1);
  });

  test('MedplumClient retries injected 5xx errors itself (maxRetries passes through)', async () => {
    const medplum = createLocalMedplum({ maxRetries: 1, faults: { serverErrorRate: 1 } });
    await rejection(medplum.createResource<Patient>(patient('R1')));
    expect(medplum.stats.requests).toBe(2);
  });
});
