import type { WithId } from '@medplum/core';
import type { Binary, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { createFakeClock } from '../helpers/clock';
import { outcomeStatus, patient, rawFetch, rejection } from './helpers';

const CSV = 'patient_id,name\nP001,Homer Simpson\nP002,Marge Simpson\n';
const BYTES = new Uint8Array([0, 1, 2, 254, 255, 10, 13]);

/** What createBinary returns: the stored Binary plus its presigned storage URL. */
type StoredBinary = WithId<Binary> & { url: string };

async function bytesOf(blob: Blob): Promise<number[]> {
  return Array.from(new Uint8Array(await blob.arrayBuffer()));
}

describe('rule e: Binary bytes are stored and downloadable as the server serves them', () => {
  test('createBinary(string) then download by storage URL, Binary/<id> and full FHIR URL', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const binary = await medplum.createBinary({ data: CSV, contentType: 'text/csv', filename: 'patients.csv' });
    const url = (binary as StoredBinary).url;
    // A presigned storage URL, as the server's presign.ts builds it.
    expect(url).toMatch(
      new RegExp(`^https://example\\.com/storage/${binary.id}/${binary.meta?.versionId}\\?Expires=\\d+&Signature=[0-9a-f]{64}$`)
    );

    for (const target of [url, `Binary/${binary.id}`, medplum.fhirUrl('Binary', binary.id).toString()]) {
      const blob = await medplum.download(target);
      expect(blob).toBeInstanceOf(Blob);
      expect(blob.type).toBe('text/csv');
      expect(await blob.text()).toBe(CSV);
    }
  });

  test('Uint8Array, ArrayBuffer and Blob uploads keep their exact bytes', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const sources = [BYTES, BYTES.buffer.slice(0), new Blob([BYTES])];
    for (const data of sources) {
      const binary = await medplum.createBinary({ data, contentType: 'application/octet-stream' });
      const blob = await medplum.download(`Binary/${binary.id}`);
      expect(await bytesOf(blob)).toEqual(Array.from(BYTES));
      expect(blob.type).toBe('application/octet-stream');
    }
  });

  test('createAttachment returns a URL that download understands', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const attachment = await medplum.createAttachment({ data: CSV, contentType: 'text/csv', filename: 'p.csv' });
    expect(attachment).toMatchObject({ contentType: 'text/csv', title: 'p.csv' });
    const doc = await medplum.createResource({
      resourceType: 'DocumentReference',
      status: 'current',
      content: [{ attachment }],
    });
    const text = await (await medplum.download(doc.content[0].attachment.url as string)).text();
    expect(text).toBe(CSV);
  });

  test('a FHIR JSON read returns the Binary resource; any other Accept returns the raw bytes', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const binary = await medplum.createBinary({ data: CSV, contentType: 'text/csv' });
    const resource = await medplum.readResource('Binary', binary.id);
    expect(resource.contentType).toBe('text/csv');
    expect(Buffer.from(resource.data as string, 'base64').toString('utf8')).toBe(CSV);

    const json = await rawFetch(medplum, 'GET', `fhir/R4/Binary/${binary.id}`);
    expect(json.headers.get('content-type')).toContain('application/fhir+json');
    const raw = await medplum.client.mockFetch(medplum.fhirUrl('Binary', binary.id).toString(), {
      headers: { accept: '*/*' },
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('text/csv');
    expect(await raw.text()).toBe(CSV);
  });

  test('downloading a missing Binary fails with 404', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const response = await medplum.client.mockFetch('https://example.com/storage/nope', {});
    expect(response.status).toBe(404);
  });

  test('presigned URLs expire an hour after upload on the server clock, and carry content-length', async () => {
    const clock = createFakeClock(Date.parse('2026-03-01T12:00:00Z'));
    const medplum = createLocalMedplum({ maxRetries: 0, clock });
    const binary = (await medplum.createBinary({ data: CSV, contentType: 'text/csv' })) as StoredBinary;
    const url = new URL(binary.url);
    expect(Number(url.searchParams.get('Expires'))).toBe(Date.parse('2026-03-01T13:00:00Z') / 1000);
    const response = await medplum.client.mockFetch(binary.url, {});
    expect(response.headers.get('content-type')).toBe('text/csv');
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(CSV)));
    // Without the query the store still answers (the server would want a signature); a wrong one is 401.
    const bare = await medplum.client.mockFetch(binary.url.split('?')[0], {});
    expect(await bare.text()).toBe(CSV);
    url.searchParams.set('Signature', '00'.repeat(32));
    expect((await medplum.client.mockFetch(url.toString(), {})).status).toBe(401);
  });

  test('a separate storage host (hosted Medplum) serves the same store', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, storageBaseUrl: 'https://storage.medplum.com/binary/' });
    const binary = (await medplum.createBinary({ data: BYTES, contentType: 'application/octet-stream' })) as StoredBinary;
    expect(binary.url.startsWith(`https://storage.medplum.com/binary/${binary.id}/`)).toBe(true);
    expect(await bytesOf(await medplum.download(binary.url))).toEqual(Array.from(BYTES));
    // URLs in the self-hosted form still resolve.
    expect(await bytesOf(await medplum.download(`https://example.com/storage/${binary.id}`))).toEqual(Array.from(BYTES));
  });

  test('download errors as the server answers them: 404 and 410 OperationOutcomes, 403 when forbidden', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const missing = await medplum.client.mockFetch(medplum.fhirUrl('Binary', 'nope').toString(), { headers: { accept: '*/*' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/fhir+json');
    expect((await missing.json()).resourceType).toBe('OperationOutcome');

    const deleted = (await medplum.createBinary({ data: CSV, contentType: 'text/csv' })) as StoredBinary;
    await medplum.deleteResource('Binary', deleted.id);
    for (const target of [deleted.url, medplum.fhirUrl('Binary', deleted.id).toString()]) {
      const response = await medplum.client.mockFetch(target, { headers: { accept: '*/*' } });
      expect(response.status).toBe(410);
      expect((await response.json()).issue[0].code).toBe('deleted');
    }

    const hidden = (await medplum.createBinary({ data: CSV, contentType: 'text/csv' })) as StoredBinary;
    const visible = await medplum.createBinary({ data: CSV, contentType: 'text/csv' });
    medplum.forbid(`Binary/${hidden.id}`);
    for (const target of [hidden.url, medplum.fhirUrl('Binary', hidden.id).toString()]) {
      const response = await medplum.client.mockFetch(target, { headers: { accept: '*/*' } });
      expect(response.status).toBe(403);
      expect((await response.json()).issue[0].code).toBe('forbidden');
    }
    expect(outcomeStatus(await rejection(medplum.readResource('Binary', hidden.id)))).toBe(403);
    expect(await (await medplum.download(`Binary/${visible.id}`)).text()).toBe(CSV);
  });

  test('forbid applies to reads, version reads and history of any resource', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const pat = await medplum.createResource<Patient>(patient('FB1'));
    medplum.forbid(`Patient/${pat.id}`);
    expect(outcomeStatus(await rejection(medplum.readResource('Patient', pat.id)))).toBe(403);
    expect(outcomeStatus(await rejection(medplum.readHistory('Patient', pat.id)))).toBe(403);
    expect(outcomeStatus(await rejection(medplum.readVersion('Patient', pat.id, pat.meta?.versionId as string)))).toBe(403);
    // An access policy would also hide it from searches; that is not emulated.
    expect(await medplum.searchResources('Patient')).toHaveLength(1);
  });
});
