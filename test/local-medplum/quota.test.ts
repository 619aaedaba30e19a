import type { Binary, BundleEntry, Observation, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum, FHIR_QUOTA_COSTS } from '../../src/lib/local-medplum';
import { createFakeClock } from '../helpers/clock';
import {
  batch,
  costOf,
  outcomeStatus,
  patient,
  pointsLeft,
  primeRateLimit,
  rawFetch,
  rejection,
  statuses,
  SYSTEM,
  upsertEntry,
} from './helpers';

/** Large enough that nothing in these tests is refused; a fake clock keeps one window open. */
async function measuringMedplum(): Promise<ReturnType<typeof createLocalMedplum>> {
  const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 100_000_000, clock: createFakeClock() });
  await primeRateLimit(medplum);
  return medplum;
}

function postEntry(resource: Patient | Observation, ifNoneExist?: string): BundleEntry {
  return { request: { method: 'POST', url: resource.resourceType, ifNoneExist }, resource };
}

function observationOf(patientValue: string): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'Weight' },
    subject: { reference: `Patient?identifier=${SYSTEM}|${patientValue}` },
  };
}

describe('FHIR quota: the costs measured on a real server, read from the RateLimit header', () => {
  test('the cost table is the server fhirquota.ts table', () => {
    expect(FHIR_QUOTA_COSTS).toEqual({ READ: 1, HISTORY: 10, SEARCH: 20, WRITE: 100 });
  });

  test('conditional PUT in a batch: 140 for a new row, 120 for an existing one, changed or unchanged', async () => {
    const medplum = await measuringMedplum();
    const rows = (gender?: Patient['gender']): BundleEntry[] =>
      Array.from({ length: 10 }, (_, i) => upsertEntry('CP' + i, gender ? { gender } : {}));
    expect(await costOf(medplum, () => medplum.executeBatch(batch(rows())))).toBe(10 * 140);
    expect(await costOf(medplum, () => medplum.executeBatch(batch(rows())))).toBe(10 * 120);
    expect(await costOf(medplum, () => medplum.executeBatch(batch(rows('female'))))).toBe(10 * 120);
  });

  test('standalone conditional PUT: 120, new, changed or unchanged', async () => {
    const medplum = await measuringMedplum();
    const upsert = (p: Patient): Promise<Patient> => medplum.upsertResource(p, { identifier: `${SYSTEM}|SP1` });
    expect(await costOf(medplum, () => upsert(patient('SP1')))).toBe(120);
    expect(await costOf(medplum, () => upsert(patient('SP1')))).toBe(120);
    expect(await costOf(medplum, () => upsert(patient('SP1', { gender: 'male' })))).toBe(120);
  });

  test('POST with ifNoneExist in a batch: 140 when new, 40 when it exists; a plain POST 100', async () => {
    const medplum = await measuringMedplum();
    const conditional = batch([postEntry(patient('IN1'), `identifier=${SYSTEM}|IN1`)]);
    expect(await costOf(medplum, () => medplum.executeBatch(structuredClone(conditional)))).toBe(140);
    const again = await medplum.executeBatch(structuredClone(conditional));
    expect(statuses(again)).toEqual(['200']);
    expect(pointsLeft(medplum)).toBe(100_000_000 - 1 - 140 - 40);
    const plain = batch(Array.from({ length: 5 }, (_, i) => postEntry(patient('PL' + i))));
    expect(await costOf(medplum, () => medplum.executeBatch(plain))).toBe(5 * 100);
  });

  test('each conditional reference in a body adds 20, in a batch and in a plain create', async () => {
    const medplum = await measuringMedplum();
    await medplum.executeBatch(batch([upsertEntry('CR1')]));
    const twoRefs: Observation = { ...observationOf('CR1'), performer: [{ reference: `Patient?identifier=${SYSTEM}|CR1` }] };
    expect(await costOf(medplum, () => medplum.executeBatch(batch([postEntry(observationOf('CR1'))])))).toBe(120);
    expect(await costOf(medplum, () => medplum.executeBatch(batch([postEntry(twoRefs)])))).toBe(140);
    expect(await costOf(medplum, () => medplum.createResource(observationOf('CR1')))).toBe(120);
  });

  test('a search costs 20 whatever it returns (here 1,000 rows)', async () => {
    const medplum = await measuringMedplum();
    await medplum.executeBatch(batch(Array.from({ length: 1000 }, (_, i) => postEntry(patient('S' + i)))));
    let rows = 0;
    expect(
      await costOf(medplum, async () => {
        rows = (await medplum.searchResources('Patient', { _count: '1000' })).length;
      })
    ).toBe(20);
    expect(rows).toBe(1000);
    expect(await costOf(medplum, () => medplum.searchResources('Patient', { identifier: `${SYSTEM}|none` }))).toBe(20);
    expect(
      await costOf(medplum, () =>
        medplum.post(
          medplum.fhirUrl('Patient', '_search'),
          `identifier=${SYSTEM}|S1,${SYSTEM}|S2`,
          'application/x-www-form-urlencoded'
        )
      )
    ).toBe(20);
  });

  test('read 1, version read 1, history 10, patch 100, delete 100, Binary download 1, storage URL 0', async () => {
    const medplum = await measuringMedplum();
    const created = await medplum.createResource<Patient>(patient('RD1'));
    expect(await costOf(medplum, () => medplum.readResource('Patient', created.id))).toBe(1);
    expect(await costOf(medplum, () => medplum.readVersion('Patient', created.id, created.meta?.versionId as string))).toBe(1);
    expect(await costOf(medplum, () => medplum.readHistory('Patient', created.id))).toBe(10);
    expect(
      await costOf(medplum, () => medplum.patchResource('Patient', created.id, [{ op: 'add', path: '/gender', value: 'male' }]))
    ).toBe(100);
    expect(await costOf(medplum, () => medplum.deleteResource('Patient', created.id))).toBe(100);

    const binary = (await medplum.createBinary({ data: 'a,b\n', contentType: 'text/csv' })) as Binary & { url: string };
    expect(await costOf(medplum, () => medplum.download(`Binary/${binary.id}`))).toBe(1);
    const storage = await medplum.client.mockFetch(binary.url, {});
    expect(storage.status).toBe(200);
    // The storage route is not a FHIR route: no charge, no RateLimit header.
    expect(storage.headers.get('ratelimit')).toBeNull();
    expect(await costOf(medplum, () => medplum.readResource('Patient', created.id).catch(() => undefined))).toBe(1);
  });

  test('stats.points counts the points charged, with or without a quota', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    await medplum.executeBatch(batch([upsertEntry('PT1'), upsertEntry('PT2')]));
    await medplum.searchResources('Patient');
    expect(medplum.stats.points).toBe(2 * 140 + 20);
    expect(medplum.rateLimitStatus()).toEqual([]);
  });
});

describe('FHIR quota: windows and refusals as the server enforces them', () => {
  test('the charge that goes over is refused with 429, and so is every later charge in the window', async () => {
    const clock = createFakeClock();
    const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 250, clock });
    await medplum.createResource<Patient>(patient('W1'));
    clock.advance(10_000);
    await medplum.createResource<Patient>(patient('W2'));
    expect(medplum.rateLimitStatus()[0]).toMatchObject({ remainingUnits: 50, secondsUntilReset: 50 });

    const err = await rejection(medplum.createResource<Patient>(patient('W3')));
    expect(outcomeStatus(err)).toBe(429);
    expect(err.outcome.issue[0].code).toBe('throttled');
    // The server's diagnostics: the spread RateLimiterRes (underscored fields) and the limit.
    expect(JSON.parse(err.outcome.issue[0].diagnostics as string)).toEqual({
      _remainingPoints: 0,
      _msBeforeNext: 50_000,
      _consumedPoints: 300,
      _isFirstInDuration: false,
      limit: 250,
    });
    expect(medplum.rateLimitStatus()[0]).toMatchObject({ remainingUnits: 0, secondsUntilReset: 50 });

    // A read (1 point) would fit in the 50 points left by count, but the user is blocked until the reset.
    clock.advance(20_000);
    const read = await rawFetch(medplum, 'GET', 'fhir/R4/Patient?_count=1');
    expect(read.status).toBe(429);
    expect(read.headers.get('ratelimit')).toBe('"fhirInteractions";r=0;t=30');
    expect(medplum.allResources('Patient')).toHaveLength(2);

    // 60 s after the first charge the window ends; the next charge opens a new one.
    clock.advance(30_000);
    await medplum.createResource<Patient>(patient('W4'));
    expect(medplum.rateLimitStatus()[0]).toMatchObject({ remainingUnits: 150, secondsUntilReset: 60 });
  });

  test('in a batch, the entry that hits the quota and every later entry get 429', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 500, clock: createFakeClock() });
    const response = await medplum.executeBatch(batch(Array.from({ length: 8 }, (_, i) => postEntry(patient('B' + i)))));
    expect(statuses(response)).toEqual(['201', '201', '201', '201', '201', '429', '429', '429']);
    expect(response.entry?.[7]?.response?.outcome?.issue?.[0]?.code).toBe('throttled');
    expect(medplum.allResources('Patient')).toHaveLength(5);
  });

  test('a transaction that hits the quota is rolled back whole (the points stay spent)', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 200, clock: createFakeClock() });
    const bundle = batch(Array.from({ length: 3 }, (_, i) => postEntry(patient('TQ' + i))), 'transaction');
    const err = await rejection(medplum.executeBatch(bundle));
    expect(outcomeStatus(err)).toBe(429);
    expect(medplum.allResources('Patient')).toHaveLength(0);
    expect(medplum.stats.points).toBe(200);
  });

  test('spent during the batch preprocessing (conditional URL searches): HTTP 200, every entry 429', async () => {
    // 100 points: five conditional URL searches pass, the sixth is refused, and every charge after it.
    const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 100, clock: createFakeClock() });
    const entries = Array.from({ length: 8 }, (_, i) => upsertEntry('PP' + i));
    const response = await rawFetch(medplum, 'POST', 'fhir/R4', batch(entries));
    expect(response.status).toBe(200);
    expect(response.headers.get('ratelimit')).toBe('"fhirInteractions";r=0;t=60');
    expect(statuses(await response.json())).toEqual(Array(8).fill('429'));
    expect(medplum.allResources('Patient')).toHaveLength(0);

    // The same as a transaction: the whole request answers 429.
    const tx = createLocalMedplum({ maxRetries: 0, fhirQuota: 100, clock: createFakeClock() });
    const txResponse = await rawFetch(tx, 'POST', 'fhir/R4', batch(entries.slice(0, 8), 'transaction'));
    expect(txResponse.status).toBe(429);
  });

  test('every FHIR response carries the header, errors included; none without a quota', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 1000, clock: createFakeClock() });
    const invalid = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('H1', { birthDate: 'x' }));
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get('ratelimit')).toBe('"fhirInteractions";r=900;t=60');
    const missing = await rawFetch(medplum, 'GET', 'fhir/R4/Patient/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('ratelimit')).toBe('"fhirInteractions";r=899;t=60');
    const unconfigured = await rawFetch(createLocalMedplum(), 'GET', 'fhir/R4/Patient/nope');
    expect(unconfigured.headers.get('ratelimit')).toBeNull();
  });

  test('setFhirQuota: import clean data first, then apply a quota; undefined removes it', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, clock: createFakeClock() });
    await medplum.executeBatch(batch(Array.from({ length: 10 }, (_, i) => postEntry(patient('CL' + i)))));
    expect(medplum.rateLimitStatus()).toEqual([]);
    medplum.setFhirQuota(100);
    await medplum.createResource<Patient>(patient('ONE'));
    await rejection(medplum.createResource<Patient>(patient('TWO')));
    medplum.setFhirQuota(undefined);
    await medplum.createResource<Patient>(patient('THREE'));
    expect(medplum.allResources('Patient')).toHaveLength(12);
  });
});
