import type { Binary } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { rawFetch } from './helpers';

const CSV = 'patient_id,name\nP001,Homer Simpson\nP002,Marge Simpson\n';
const BYTES = new Uint8Array([0, 1, 2, 254, 255, 10, 13]);

async function bytesOf(blob: Blob): Promise<number[]> {
  return Array.from(new Uint8Array(await blob.arrayBuffer()));
}

describe('rule e: Binary bytes are stored and downloadable as the server serves them', () => {
  test('createBinary(string) then download by storage URL, Binary/<id> and full FHIR URL', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const binary = await medplum.createBinary({ data: CSV, contentType: 'text/csv', filename: 'patients.csv' });
    const url = (binary as Binary & { url: string }).url;
    expect(url).toBe(`https://example.com/storage/Binary/${binary.id}`);
    expect(url).not.toBe(medplum.fhirUrl('Binary', binary.id).toString());

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
    const response = await medplum.client.mockFetch('https://example.com/storage/Binary/nope', {});
    expect(response.status).toBe(404);
  });
});
