import { getStatus } from '@medplum/core';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import type { FaultOptions, LocalMedplum } from '../../src/lib/local-medplum';
import { createLocalMedplum, SERIALIZATION_FAILURE_MESSAGE } from '../../src/lib/local-medplum';
import { batch, outcomeStatus, outcomeText, patient, rawFetch, rejection, statuses, upsertEntry } from './helpers';

function conditionalBatch(prefix: string, count: number, type: 'batch' | 'transaction' = 'batch'): Bundle {
  return batch(
    Array.from({ length: count }, (_, i) => upsertEntry(prefix + i)),
    type
  );
}

/** Sends `count` raw POSTs and records each status or error message. */
async function outcomesOf(medplum: LocalMedplum, count: number): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < count; i++) {
    try {
      const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('D' + i));
      outcomes.push(String(response.status));
    } catch (err) {
      outcomes.push((err as Error).message);
    }
  }
  return outcomes;
}

describe('rule i: server, gateway and rate-limit errors before processing', () => {
  test('serverErrorRate 1: 500 (exception) or 503 (transient, which getStatus reads as 400), nothing written', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { serverErrorRate: 1, seed: 7 } });
    const codes = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('SE' + i));
      codes.add(response.status);
      const body = await response.json();
      expect(body.resourceType).toBe('OperationOutcome');
      expect(getStatus(body)).toBe(response.status === 500 ? 500 : 400);
    }
    expect([...codes].sort()).toEqual([500, 503]);
    await rejection(medplum.createResource<Patient>(patient('SE')));
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('gatewayErrorRate 1: 502 or 504 with an HTML page; MedplumClient reports it as a 400 outcome', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { gatewayErrorRate: 1, seed: 3 } });
    const codes = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('GW' + i));
      codes.add(response.status);
      expect(response.headers.get('content-type')).toBe('text/html');
      expect(await response.text()).toMatch(/^<html>\r\n<head><title>50[24] Bad Gateway|Gateway Time-out/);
    }
    expect([...codes].sort()).toEqual([502, 504]);
    const err = await rejection(medplum.createResource<Patient>(patient('GW')));
    expect(outcomeStatus(err)).toBe(400);
    expect(err.message).toContain('<html>');
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('rateLimitRate 1: 429 throttled with RateLimit r=0 and a reset of 1 to 60 s, nothing written', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { rateLimitRate: 1, seed: 5 } });
    const resets = new Set<number>();
    for (let i = 0; i < 30; i++) {
      const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('RL' + i));
      expect(response.status).toBe(429);
      const match = /^"fhirInteractions";r=0;t=(\d+)$/.exec(response.headers.get('ratelimit') ?? '');
      expect(match).not.toBeNull();
      resets.add(Number(match?.[1]));
      expect((await response.json()).issue[0].code).toBe('throttled');
    }
    expect(Math.min(...resets)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...resets)).toBeLessThanOrEqual(60);
    expect(resets.size).toBeGreaterThan(5);
    const err = await rejection(medplum.createResource<Patient>(patient('RL')));
    expect(outcomeStatus(err)).toBe(429);
    expect(medplum.rateLimitStatus()[0]).toMatchObject({ name: 'fhirInteractions', remainingUnits: 0 });
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('MedplumClient retries injected 5xx errors itself (maxRetries passes through)', async () => {
    const medplum = createLocalMedplum({ maxRetries: 1, faults: { serverErrorRate: 1 } });
    await rejection(medplum.createResource<Patient>(patient('R1')));
    expect(medplum.stats.requests).toBe(2);
  });
});

describe('rule i: network errors', () => {
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
});

describe('rule i: write conflicts (409, as PostgreSQL serialization failures)', () => {
  test('conflictRate 1: a standalone write, every batch entry, and a whole transaction fail 409', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { conflictRate: 1 } });
    const err = await rejection(medplum.createResource<Patient>(patient('C1')));
    expect(outcomeStatus(err)).toBe(409);
    expect(outcomeText(err)).toBe(SERIALIZATION_FAILURE_MESSAGE);
    expect(err.outcome.issue[0].details?.coding?.[0]?.code).toBe('40001');

    expect(statuses(await medplum.executeBatch(conditionalBatch('CB', 4)))).toEqual(Array(4).fill('409'));
    const txErr = await rejection(medplum.executeBatch(conditionalBatch('CT', 4, 'transaction')));
    expect(outcomeStatus(txErr)).toBe(409);
    expect(medplum.allResources('Patient')).toHaveLength(0);
  });

  test('conflictRate 0.5: some entries fail, the rest are written; a transaction rolls back whole', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, faults: { conflictRate: 0.5, seed: 11 } });
    const response = await medplum.executeBatch(conditionalBatch('CH', 40));
    const conflicts = statuses(response).filter((s) => s === '409').length;
    expect(conflicts).toBeGreaterThan(5);
    expect(conflicts).toBeLessThan(35);
    expect(medplum.allResources('Patient')).toHaveLength(40 - conflicts);

    const before = medplum.allResources('Patient').length;
    await rejection(medplum.executeBatch(conditionalBatch('TX', 8, 'transaction')));
    expect(medplum.allResources('Patient')).toHaveLength(before);
  });

  test('concurrent write requests conflict without any injection; sequential ones never do', async () => {
    const sequential = createLocalMedplum({ maxRetries: 0 });
    for (let b = 0; b < 4; b++) {
      expect(statuses(await sequential.executeBatch(conditionalBatch(`S${b}-`, 200)))).not.toContain('409');
    }

    // Four batches in flight at once: the first processed sees 4 in flight (14%), then 3 (8%), 2 (3%), 1 (0).
    const run = async (options: { seed?: number; concurrencyConflicts?: boolean }): Promise<number[]> => {
      const medplum = createLocalMedplum({
        maxRetries: 0,
        concurrencyConflicts: options.concurrencyConflicts,
        faults: options.seed === undefined ? undefined : { seed: options.seed },
      });
      const responses = await Promise.all(
        Array.from({ length: 4 }, (_, b) => medplum.executeBatch(conditionalBatch(`P${b}-`, 200)))
      );
      return responses.map((r) => statuses(r).filter((s) => s === '409').length);
    };
    const counts = await run({ seed: 9 });
    expect(counts[0]).toBeGreaterThan(10); // about 28 expected
    expect(counts[0]).toBeLessThan(50);
    expect(counts[1]).toBeGreaterThan(4); // about 16
    expect(counts[1]).toBeLessThan(32);
    expect(counts[2]).toBeLessThan(15); // about 6
    expect(counts[3]).toBe(0);
    expect(await run({ seed: 9 })).toEqual(counts);
    expect(await run({ seed: 9, concurrencyConflicts: false })).toEqual([0, 0, 0, 0]);
  });

  test('reads in flight do not count as concurrent writes', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const [written] = await Promise.all([
      medplum.executeBatch(conditionalBatch('RW', 300)),
      ...Array.from({ length: 5 }, () => medplum.searchResources('Patient')),
    ]);
    expect(statuses(written)).not.toContain('409');
  });
});

describe('rule i: determinism', () => {
  test('the same seed gives the same faults; another seed gives others', async () => {
    const run = async (faults: FaultOptions): Promise<string> =>
      (await outcomesOf(createLocalMedplum({ maxRetries: 0, faults }), 60)).join(',');
    const faults: FaultOptions = {
      serverErrorRate: 0.2,
      networkErrorRate: 0.1,
      gatewayErrorRate: 0.1,
      rateLimitRate: 0.1,
      conflictRate: 0.1,
      seed: 42,
    };
    const first = await run(faults);
    for (const expected of ['201', 'fetch failed', '409', '429']) {
      expect(first).toContain(expected);
    }
    expect(first).toMatch(/50[0234]/);
    expect(await run(faults)).toBe(first);
    expect(await run({ ...faults, seed: 43 })).not.toBe(first);
  });

  test('the number of writes in a request does not shift the faults of later requests', async () => {
    const faults: FaultOptions = { serverErrorRate: 0.3, conflictRate: 0.2, seed: 8 };
    const requestFaults = async (batchSize: number): Promise<string[]> => {
      const medplum = createLocalMedplum({ maxRetries: 0, faults });
      const result: string[] = [];
      for (let i = 0; i < 20; i++) {
        const response = await rawFetch(medplum, 'POST', 'fhir/R4', conditionalBatch(`N${i}-`, batchSize));
        result.push(response.status === 200 ? 'ok' : String(response.status));
      }
      return result;
    };
    expect(await requestFaults(1)).toEqual(await requestFaults(7));
  });
});
