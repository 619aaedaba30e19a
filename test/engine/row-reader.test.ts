import { describe, expect, it } from 'vitest';
import { refusedCharacters, visibleSourceId } from '../../src/lib/tables/identifier-chars';
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

  it('accepts printable ids with characters that searches escape', () => {
    const ids = ['P?1', 'P&1', 'P#1', 'P%201', 'P+1', 'P,1', 'P$1', 'P\\1', "O'Brien", 'a=b/c', 'P"1', '\u738b-1', '\u{1F600}', 'Jose\u0301'];
    const r = reader(Object.fromEntries(ids.map((id, i) => [`c${i}`, id])));
    expect(ids.map((_, i) => r.sourceIdValue(`c${i}`))).toEqual(ids);
    expect(r.problems).toEqual([]);
  });

  it.each([
    ['P|1', "'|'"],
    ['P 1', 'spaces or other whitespace'],
    ['P\u00a01', 'spaces or other whitespace'],
    ['P\t1', 'spaces or other whitespace'],
    ['P\u00071', 'control characters'],
    ['P\u200b1', 'invisible or formatting characters (zero-width, bidi, soft hyphen, byte-order mark, line separators)'],
    ['P\u200d1', 'invisible or formatting characters'],
    ['P\u200e1', 'invisible or formatting characters'],
    ['P\u202e1', 'invisible or formatting characters'],
    ['P\u20661', 'invisible or formatting characters'],
    ['P\u00ad1', 'invisible or formatting characters'],
    ['P\ufeff1', 'invisible or formatting characters'],
    ['P\u20281', 'invisible or formatting characters'],
    ['P\ue0001', 'private-use or unassigned characters'],
    ['P\u03781', 'private-use or unassigned characters'],
    ['P\ud8001', 'broken characters (lone UTF-16 surrogates)'],
  ])('refuses %j, naming the column and the kind of character, never the value', (id, kind) => {
    const r = reader({ patient_id: id });
    r.sourceIdValue('patient_id');
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ row: 7, column: 'patient_id', sourceId: 'X1' });
    expect(r.problems[0].message).toMatch(/^patient_id must not contain /);
    expect(r.problems[0].message).toContain(kind);
    expect(r.problems[0].message).not.toContain(id);
  });

  it('names every kind of refused character an id holds, in one problem', () => {
    const r = reader({ id: 'a|b c\u200b' });
    r.sourceIdValue('id');
    expect(r.problems.map((p) => p.message)).toEqual([
      "id must not contain '|', spaces or other whitespace or invisible or formatting characters (zero-width, bidi, soft hyphen, byte-order mark, line separators) (it becomes a FHIR identifier)",
    ]);
  });
});

describe('visibleSourceId', () => {
  it('leaves printable ids alone and spells out characters that would not show', () => {
    expect(visibleSourceId('P?1&x=%20')).toBe('P?1&x=%20');
    expect(visibleSourceId('P 1')).toBe('P 1');
    expect(visibleSourceId('P\u200b1\u202e2\n3\u00a04')).toBe('P<U+200B>1<U+202E>2<U+000A>3<U+00A0>4');
    expect(visibleSourceId('\ud800')).toBe('<U+D800>');
  });
});

describe('refusedCharacters', () => {
  it('is undefined for safe ids', () => {
    expect(refusedCharacters('P-001?x')).toBeUndefined();
  });
});
