import { describe, expect, it } from 'vitest';
import { csvFromText, detectDelimiter } from '../../src/lib/csv/document';
import { ImportFileError } from '../../src/lib/errors';

async function collect(text: string): Promise<{ row: number; fields: string[]; malformed?: string }[]> {
  const out = [];
  for await (const record of csvFromText('t.csv', text).records()) {
    out.push(record);
  }
  return out;
}

describe('csvFromText', () => {
  it('numbers records as spreadsheet rows, counting blank lines and multi-line quoted values as one row each', async () => {
    const records = await collect('a,b\n1,"two\nlines"\n\n3,4\n');
    expect(records.map((r) => r.row)).toEqual([1, 2, 3, 4]);
    expect(records[1].fields).toEqual(['1', 'two\nlines']);
    expect(records[2].fields).toEqual(['']);
    expect(records[3].fields).toEqual(['3', '4']);
  });

  it('drops a byte-order mark and reads CRLF line ends', async () => {
    const records = await collect('\uFEFFa,b\r\n1,2\r\n');
    expect(records).toEqual([
      { row: 1, fields: ['a', 'b'] },
      { row: 2, fields: ['1', '2'] },
    ]);
  });

  it('fails the whole file on an unclosed quote, naming the row where it opened', async () => {
    await expect(collect('a,b\n1,2\n3,"oops\n5,6\n')).rejects.toThrow(/unclosed quote in the record starting at row 3/);
  });

  it('rejects binary data and text that was not UTF-8', () => {
    expect(() => csvFromText('bin.csv', 'a,b\n\u0000\u0001')).toThrow(ImportFileError);
    expect(() => csvFromText('latin1.csv', 'a,b\nJos\uFFFD,1\n')).toThrow(/not valid UTF-8 \(undecodable bytes on line 2\)/);
  });

  it('detects semicolon and tab separated files from the header', () => {
    expect(detectDelimiter('a;b;c')).toBe(';');
    expect(detectDelimiter('a\tb\tc')).toBe('\t');
    expect(detectDelimiter('a,b;c')).toBe(',');
    expect(csvFromText('x.csv', 'a;b\n1;2').delimiter).toBe(';');
  });
});
