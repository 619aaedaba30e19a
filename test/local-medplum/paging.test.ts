import type { Bundle, BundleEntry, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, patient } from './helpers';

async function seed(count: number): Promise<ReturnType<typeof createLocalMedplum>> {
  const medplum = createLocalMedplum({ maxRetries: 0 });
  for (let start = 0; start < count; start += 500) {
    const entries: BundleEntry[] = [];
    for (let i = start; i < Math.min(start + 500, count); i++) {
      entries.push({
        request: { method: 'POST', url: 'Patient' },
        resource: patient('PG' + String(i).padStart(5, '0'), { birthDate: `19${String(i % 100).padStart(2, '0')}-01-01` }),
      });
    }
    await medplum.executeBatch(batch(entries));
  }
  return medplum;
}

function link(bundle: Bundle, relation: string): string | undefined {
  return bundle.link?.find((l) => l.relation === relation)?.url;
}

describe('rule h: searches page as the server does', () => {
  test('_count defaults to 20, with self and next links, and total only when asked', async () => {
    const medplum = await seed(45);
    const page1 = await medplum.search('Patient');
    expect(page1.entry).toHaveLength(20);
    expect(page1.total).toBeUndefined();
    expect(link(page1, 'self')).toMatch(/^https:\/\/example\.com\/fhir\/R4\/Patient\?/);
    const next = link(page1, 'next') as string;
    expect(new URL(next).searchParams.get('_offset')).toBe('20');
    expect(new URL(next).searchParams.get('_count')).toBe('20');

    const page3 = await medplum.search('Patient', { _offset: '40', _total: 'accurate' });
    expect(page3.entry).toHaveLength(5);
    expect(page3.total).toBe(45);
    expect(link(page3, 'next')).toBeUndefined();

    expect(await medplum.searchResources('Patient')).toHaveLength(20);
  });

  test('_count is capped at 1000', async () => {
    const medplum = await seed(1005);
    const page = await medplum.search('Patient', { _count: '5000', _total: 'accurate' });
    expect(page.entry).toHaveLength(1000);
    expect(page.total).toBe(1005);
    expect(link(page, 'next')).toContain('_offset=1000');
  });

  test('searchResourcePages follows the next links through every page', async () => {
    const medplum = await seed(45);
    const sizes: number[] = [];
    const seen = new Set<string>();
    for await (const page of medplum.searchResourcePages('Patient', { _count: '20' })) {
      sizes.push(page.length);
      page.forEach((p: Patient) => seen.add(p.id as string));
    }
    expect(sizes).toEqual([20, 20, 5]);
    expect(seen.size).toBe(45);
  });

  test('_sort orders before paging', async () => {
    const medplum = await seed(45);
    const page = await medplum.search('Patient', { _sort: '-birthdate', _count: '3' });
    expect(page.entry?.map((e) => (e.resource as Patient).birthDate)).toEqual(['1944-01-01', '1943-01-01', '1942-01-01']);
  });
});
