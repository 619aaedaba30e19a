// A condition catalog too large for one request: above about 6,300 codes the CodeSystem and
// ConceptMap transaction passes the server's 1 MB body limit, even for a one-row file, because the
// stored catalog is merged and written whole. Such a catalog is written in parts that each fit.
import type { CodeSystem, ConceptMap } from '@medplum/fhirtypes';
import { describe, expect, it, vi } from 'vitest';
import { csvFromText, defaultSettings, importCsv } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';

const CODES = 20_000;
const maxRequestBytes = defaultSettings().maxRequestBytes;
const utf8 = new TextEncoder();

interface SentRequest {
  method: string;
  url: string;
  bytes: number;
}

/**
 * Records every request the client sends. `loseAnswerOf` picks a request whose answer is lost
 * after the server processed it (once): the client sends it again.
 */
function recordRequests(
  medplum: LocalMedplum,
  loseAnswerOf?: (request: SentRequest) => boolean
): { sent: SentRequest[]; lostAnswers: () => number } {
  const sent: SentRequest[] = [];
  const server = medplum.client;
  const original = server.mockFetch.bind(server);
  let lost = 0;
  vi.spyOn(server, 'mockFetch').mockImplementation(async (url: string, init: RequestInit = {}) => {
    const body = init.body;
    const bytes = typeof body === 'string' ? utf8.encode(body).length : body instanceof Uint8Array ? body.byteLength : 0;
    const request = { method: (init.method ?? 'GET').toUpperCase(), url, bytes };
    sent.push(request);
    const response = await original(url, init);
    if (lost === 0 && loseAnswerOf?.(request)) {
      lost++;
      throw new TypeError('fetch failed');
    }
    return response;
  });
  return { sent, lostAnswers: () => lost };
}

function catalogCsv(codes: number, rename: (i: number) => string | undefined = () => undefined): string {
  const rows = Array.from({ length: codes }, (_, i) => {
    const icd10 = `${String.fromCharCode(65 + (i % 26))}${String(i % 100).padStart(2, '0')}.${i % 10}`;
    return `C${String(i).padStart(5, '0')},${rename(i) ?? `Legacy condition number ${i} with a descriptive name`},${icd10}`;
  });
  return ['condition_id,condition_name,icd10_code', ...rows].join('\n');
}

async function importCatalog(medplum: LocalMedplum, csv: string): Promise<ImportReport> {
  return (await importCsv(medplum, csvFromText('conditions.csv', csv))).report;
}

/** Requests that write: not reads, not the plan's lookups (POST Type/_search). */
const writes = (sent: SentRequest[]): SentRequest[] => sent.filter((r) => r.method !== 'GET' && !r.url.endsWith('/_search'));

function storedCatalog(medplum: LocalMedplum): { codeSystem: CodeSystem; conceptMap: ConceptMap } {
  const codeSystems = medplum.allResources<CodeSystem>('CodeSystem');
  const conceptMaps = medplum.allResources<ConceptMap>('ConceptMap');
  expect([codeSystems.length, conceptMaps.length]).toEqual([1, 1]);
  return { codeSystem: codeSystems[0], conceptMap: conceptMaps[0] };
}

describe(`a catalog of ${CODES.toLocaleString('en')} codes`, () => {
  it('is written in requests within the body limit, completely, and a re-run writes nothing', async () => {
    const medplum = createLocalMedplum();
    const { sent } = recordRequests(medplum);
    const csv = catalogCsv(CODES);

    const first = await importCatalog(medplum, csv);
    expect(first).toMatchObject({ rows: CODES, created: CODES, failed: 0 });
    expect(writes(sent).length).toBeGreaterThan(2);
    for (const request of sent) {
      expect(request.bytes, `${request.method} ${request.url}`).toBeLessThanOrEqual(maxRequestBytes);
    }
    const { codeSystem, conceptMap } = storedCatalog(medplum);
    expect(codeSystem.count).toBe(CODES);
    expect(codeSystem.concept?.map((c) => c.code)).toEqual(Array.from({ length: CODES }, (_, i) => `C${String(i).padStart(5, '0')}`));
    expect(conceptMap.group?.[0].element).toHaveLength(CODES);
    expect(conceptMap.group?.[0].element?.[123]).toMatchObject({ code: 'C00123', target: [{ code: 'T23.3' }] });

    sent.length = 0;
    const writesBefore = medplum.stats.writes;
    const again = await importCatalog(medplum, csv);
    expect(again).toMatchObject({ rows: CODES, unchanged: CODES, created: 0, updated: 0, failed: 0 });
    expect(writes(sent)).toEqual([]);
    expect(medplum.stats.writes).toBe(writesBefore);

    // Grown by patches only: new codes appended, a changed name replaced in place.
    sent.length = 0;
    const grown = await importCatalog(medplum, catalogCsv(CODES + 10, (i) => (i === 7 ? 'Renamed condition' : undefined)));
    expect(grown).toMatchObject({ created: 10, updated: 1, unchanged: CODES - 1, failed: 0 });
    expect(writes(sent).map((r) => r.method)).toEqual(['PATCH', 'PATCH']);
    expect(writes(sent).every((r) => r.bytes <= maxRequestBytes)).toBe(true);
    const after = storedCatalog(medplum);
    expect(after.codeSystem.concept).toHaveLength(CODES + 10);
    expect(after.codeSystem.count).toBe(CODES + 10);
    expect(after.codeSystem.concept?.[7]).toEqual({ code: 'C00007', display: 'Renamed condition' });
    expect(after.conceptMap.group?.[0].element?.at(-1)?.code).toBe(`C${CODES + 9}`);
  });

  it('a patch whose answer was lost, sent again, appends nothing twice', async () => {
    const codes = 10_000;
    const medplum = createLocalMedplum();
    const { lostAnswers } = recordRequests(medplum, (request) => request.method === 'PATCH');
    const report = await importCatalog(medplum, catalogCsv(codes));
    expect(report).toMatchObject({ created: codes, failed: 0 });
    expect(lostAnswers()).toBe(1);
    const { codeSystem, conceptMap } = storedCatalog(medplum);
    const stored = codeSystem.concept?.map((c) => c.code) ?? [];
    expect(stored).toHaveLength(codes);
    expect(new Set(stored).size).toBe(codes);
    expect(conceptMap.group?.[0].element).toHaveLength(codes);
  });
});

describe('a catalog that fits one request', () => {
  it('is still written as one transaction', async () => {
    const medplum = createLocalMedplum();
    const { sent } = recordRequests(medplum);
    const report = await importCatalog(medplum, catalogCsv(50));
    expect(report).toMatchObject({ created: 50, failed: 0 });
    expect(writes(sent).map((r) => [r.method, r.url.replace(/^.*\/fhir\/R4\/?/, '/')])).toEqual([['POST', '/']]);
  });
});
