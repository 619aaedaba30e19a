import { describe, expect, it } from 'vitest';
import { RowReader } from '../../src/lib/tables/row-reader';

const reader = (cells: Record<string, string>): RowReader => RowReader.ofCells(7, cells, 'X1');

describe('RowReader', () => {
  it('accepts real dates and rejects impossible, malformed and future ones without echoing the value', () => {
    const r = reader({ a: '2024-02-29', b: '2023-02-30', c: '03/04/2020', d: '2999-01-01' });
    expect(r.date('a')).toBe('2024-02-29');
    expect(r.date('b')).toBeUndefined();
    expect(r.date('c')).toBeUndefined();
    expect(r.date('d', { notAfter: new Date('2026-01-01') })).toBeUndefined();
    expect(r.problems.map((p) => [p.row, p.column, p.message])).toEqual([
      [7, 'b', 'b is not a real calendar date'],
      [7, 'c', 'c must be a date in YYYY-MM-DD form'],
      [7, 'd', 'd is in the future'],
    ]);
    expect(JSON.stringify(r.problems)).not.toContain('2023-02-30');
  });

  it('reads date-times, adding UTC when no zone is given', () => {
    const r = reader({ a: '2023-05-01 09:30', b: '2023-05-01T09:30:15+02:00', c: '2023-05-01T25:00' });
    expect(r.dateTime('a')).toBe('2023-05-01T09:30:00Z');
    expect(r.dateTime('b')).toBe('2023-05-01T09:30:15+02:00');
    expect(r.dateTime('c')).toBeUndefined();
    expect(r.problems[0].message).toBe('c has an impossible time of day');
  });

  it('looks codes up case-insensitively and lists the allowed codes on a miss', () => {
    const r = reader({ g: 'f', h: 'X' });
    const table = { M: 'male', F: 'female' };
    expect(r.code('g', table)).toBe('female');
    expect(r.code('h', table)).toBeUndefined();
    expect(r.problems[0].message).toBe('h is not a known code: one of M, F');
  });

  it('requires source ids usable in a FHIR token search', () => {
    const r = reader({ id: 'A 1', ok: 'P-001' });
    expect(r.sourceIdValue('ok')).toBe('P-001');
    r.sourceIdValue('id');
    r.sourceIdValue('missing');
    expect(r.problems.map((p) => p.column)).toEqual(['id', 'missing']);
  });
});
