import type { Bundle, BundleEntry, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum, MAX_JSON_BODY_BYTES } from '../../src/lib/local-medplum';
import { batch, outcomeStatus, outcomeText, patient, rawFetch, rejection, statuses, SYSTEM, upsertEntry } from './helpers';

const QUERY_LIMIT = 70_000;
const QUERY_MESSAGE = `Query string exceeds maximum length of ${QUERY_LIMIT} characters`;

/** A batch of plain creates whose JSON is `bytes` long, give or take a few bytes of padding. */
function batchOfSize(bytes: number): Bundle {
  const bundle = batch([{ request: { method: 'POST', url: 'Patient' }, resource: patient('BIG', { name: [{ text: '' }] }) }]);
  const base = Buffer.byteLength(JSON.stringify(bundle));
  (bundle.entry?.[0]?.resource as Patient).name = [{ text: 'x'.repeat(bytes - base) }];
  expect(Buffer.byteLength(JSON.stringify(bundle))).toBe(bytes);
  return bundle;
}

/** A `_id` search value list whose query string (after `?`) is exactly `length` characters. */
function idQuery(length: number): string {
  const prefix = '_id=';
  return prefix + 'a'.repeat(length - prefix.length);
}

describe('request body limits (express parsers through the server error handler)', () => {
  test('a JSON body over 1 MB (1,048,576 bytes) is refused with 400 "File too large"; 1 MB exactly passes', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 50_000 });
    const over = await rawFetch(medplum, 'POST', 'fhir/R4', batchOfSize(MAX_JSON_BODY_BYTES + 1));
    expect(over.status).toBe(400);
    const outcome = await over.json();
    expect(outcome.issue[0]).toMatchObject({ code: 'invalid', details: { text: 'File too large' } });
    expect(medplum.allResources('Patient')).toHaveLength(0);
    expect(medplum.stats.points).toBe(0);

    const err = await rejection(medplum.executeBatch(batchOfSize(MAX_JSON_BODY_BYTES + 10)));
    expect(outcomeText(err)).toBe('File too large');

    expect(statuses(await medplum.executeBatch(batchOfSize(MAX_JSON_BODY_BYTES)))).toEqual(['201']);
  });

  test('the limit counts bytes, not characters', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    // 600,000 two-byte characters: 1.2 MB.
    const response = await rawFetch(medplum, 'POST', 'fhir/R4/Patient', patient('UTF', { name: [{ text: 'é'.repeat(600_000) }] }));
    expect(response.status).toBe(400);
  });

  test('Prefer: respond-async batches may reach 50 MB; Binary uploads have no JSON limit', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const big = batchOfSize(MAX_JSON_BODY_BYTES + 100);
    const response = await medplum.client.mockFetch(medplum.fhirUrl().toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', prefer: 'respond-async' },
      body: JSON.stringify(big),
    });
    // Accepted by the parser (the batch itself is processed synchronously here; see the docs).
    expect(response.status).toBe(200);

    const binary = await medplum.createBinary({ data: 'x'.repeat(3 * MAX_JSON_BODY_BYTES), contentType: 'text/csv' });
    expect((await (await medplum.download(`Binary/${binary.id}`)).text()).length).toBe(3 * MAX_JSON_BODY_BYTES);
  });
});

describe('query strings over 70,000 characters are refused by the router', () => {
  test('a plain GET search', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const over = await rawFetch(medplum, 'GET', `fhir/R4/Patient?${idQuery(QUERY_LIMIT + 1)}`);
    expect(over.status).toBe(400);
    expect((await over.json()).issue[0].details.text).toBe(QUERY_MESSAGE);
    const at = await rawFetch(medplum, 'GET', `fhir/R4/Patient?${idQuery(QUERY_LIMIT)}`);
    expect(at.status).toBe(200);
  });

  test('a batch entry URL fails only its entry; in a transaction the whole bundle', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const search = (length: number): Bundle['entry'] => [{ request: { method: 'GET', url: `Patient?${idQuery(length)}` } }];
    const response = await medplum.executeBatch(batch([...(search(QUERY_LIMIT + 1) ?? []), ...(search(QUERY_LIMIT) ?? [])]));
    expect(statuses(response)).toEqual(['400', '200']);
    expect(response.entry?.[0]?.response?.outcome?.issue?.[0]?.details?.text).toBe(QUERY_MESSAGE);
  });

  test('a conditional URL (PUT Type?search) in a batch, in a transaction and standalone', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const value = 'v'.repeat(QUERY_LIMIT);
    const longEntry: BundleEntry = {
      request: { method: 'PUT', url: `Patient?identifier=${SYSTEM}|${value}` },
      resource: patient('LONG'),
    };
    const response = await medplum.executeBatch(batch([longEntry, upsertEntry('SHORT')]));
    expect(statuses(response)).toEqual(['400', '201']);
    expect(response.entry?.[0]?.response?.outcome?.issue?.[0]?.details?.text).toBe(QUERY_MESSAGE);

    const txErr = await rejection(medplum.executeBatch(batch([longEntry], 'transaction')));
    expect(outcomeStatus(txErr)).toBe(400);
    expect(outcomeText(txErr)).toBe(QUERY_MESSAGE);

    const standalone = await rawFetch(medplum, 'PUT', `fhir/R4/Patient?identifier=${SYSTEM}|${value}`, patient('LONG'));
    expect(standalone.status).toBe(400);
    expect((await standalone.json()).issue[0].details.text).toBe(QUERY_MESSAGE);
    expect(medplum.allResources<Patient>('Patient').map((p) => p.identifier?.[0]?.value)).toEqual(['SHORT']);
  });
});
