import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeCsvBytes } from '../../src/lib/csv/bytes';
import { csvFromText } from '../../src/lib/csv/document';
import { csvFromFile } from '../../src/lib/csv/file';
import { firstInvalidUtf8 } from '../../src/lib/csv/sniff';
import { ImportFileError } from '../../src/lib/errors';

const tmp = mkdtempSync(join(tmpdir(), 'bytes-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));
const bytesOf = (...parts: (number[] | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((part) => (typeof part === 'string' ? ascii(part) : part)));

/** The problem each way in gives for the same bytes: decodeCsvBytes, csvFromFile, and csvFromText over lossy text. */
async function problems(bytes: Uint8Array): Promise<{ bytes?: string; file?: string; text?: string }> {
  const problemOf = async (attempt: () => unknown): Promise<string | undefined> => {
    try {
      const doc = (await attempt()) as { records(): AsyncIterable<unknown> };
      for await (const record of doc.records()) {
        void record;
      }
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(ImportFileError);
      expect((err as ImportFileError).file).toBe('up.csv');
      return (err as ImportFileError).problem;
    }
  };
  const path = join(tmp, 'up.csv');
  writeFileSync(path, bytes);
  return {
    bytes: await problemOf(() => decodeCsvBytes('up.csv', bytes)),
    file: await problemOf(() => csvFromFile(path)),
    text: await problemOf(() => csvFromText('up.csv', Buffer.from(bytes).toString('utf8'))),
  };
}

const SAVE_AS = 'open it in Excel and save it as "CSV UTF-8 (Comma delimited)"';

describe('decodeCsvBytes, csvFromFile and csvFromText name what the bytes are, alike', () => {
  it.each<[string, Uint8Array, string]>([
    ['UTF-16LE with a BOM', bytesOf([0xff, 0xfe], 'a\0,\0b\0'), 'the file is UTF-16 text, not UTF-8; re-export it as UTF-8'],
    ['UTF-16BE without a BOM', bytesOf('\0a\0,\0b\0\n\0x\0,\0y'), 'the file is UTF-16 text, not UTF-8; re-export it as UTF-8'],
    [
      'an .xlsx (ZIP with [Content_Types].xml)',
      bytesOf('PK\x03\x04', [0x14, 0, 0, 0, 8, 0, 0x21, 0x58, 0xc5, 0x2f], '\0'.repeat(16), '[Content_Types].xml', [0x9d, 0xff]),
      `the file is an Excel workbook (.xlsx), not CSV text: ${SAVE_AS}`,
    ],
    [
      'a ZIP of something else',
      bytesOf('PK\x03\x04', [0x14, 0, 0, 0, 8, 0], '\0'.repeat(20), 'patients.csv', [0x9d, 0xff]),
      'the file is a ZIP archive, not CSV text: unpack it and import the CSV files inside',
    ],
    [
      'an .xls',
      bytesOf([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], '\0'.repeat(16), [0x3e, 0, 3, 0, 0xfe, 0xff]),
      `the file is a legacy Excel 97-2003 workbook (.xls), not CSV text: ${SAVE_AS}`,
    ],
    ['a PDF', bytesOf('%PDF-1.7\n%', [0xe2, 0xe3, 0xcf, 0xd3], '\n1 0 obj'), 'the file is a PDF document, not CSV text: export the data as CSV instead'],
    ['gzip', bytesOf([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3]), 'the file is gzip-compressed, not CSV text: decompress it and import the CSV inside'],
    ['a JPEG', bytesOf([0xff, 0xd8, 0xff, 0xe0, 0, 0x10], 'JFIF\0'), 'the file is a JPEG image, not CSV text'],
    ['a GIF', bytesOf('GIF89a', [1, 0, 1, 0, 0x80, 0, 0]), 'the file is a GIF image, not CSV text'],
    [
      'an HTML page after a BOM and blank lines',
      bytesOf([0xef, 0xbb, 0xbf], '\n\n  <HTML>\n<body>Session expired</body></html>'),
      'the file is an HTML page (perhaps an error or login page saved instead of the export), not CSV text: download the export again',
    ],
    ['binary data', bytesOf('a,b\n1,2\n3,\0\x01'), 'the file is binary, not CSV text (NUL byte on line 3)'],
  ])('%s', async (_, bytes, problem) => {
    expect(await problems(bytes)).toEqual({ bytes: problem, file: problem, text: problem });
  });

  it('Windows-1252 text: named as such from bytes; text decoded earlier has lost the bytes', async () => {
    // "Café" and curly quotes as Windows-1252 on line 3.
    const bytes = bytesOf('patient_id,first_name\nP1,Ann\nP2,Caf', [0xe9, 0x20, 0x93], 'x', [0x94], '\n');
    const cp1252 = 'the file is not valid UTF-8 (undecodable bytes on line 3); it looks like Windows-1252/Latin-1 text: re-export it as CSV UTF-8';
    expect(await problems(bytes)).toEqual({
      bytes: cp1252,
      file: cp1252,
      text: 'the file is not valid UTF-8 (undecodable bytes on line 3); re-export it as UTF-8',
    });
  });

  it('other undecodable bytes are not guessed at', async () => {
    const bytes = bytesOf('a,b\n1,', [0xc3, 0x28, 0x01], '\n');
    const problem = 'the file is not valid UTF-8 (undecodable bytes on line 2); re-export it as UTF-8';
    expect(await problems(bytes)).toEqual({ bytes: problem, file: problem, text: problem });
  });

  it('decodes UTF-8, drops a byte-order mark and keeps a real U+FFFD character', async () => {
    const doc = decodeCsvBytes('ok.csv', new TextEncoder().encode('\uFEFFa;b\n\uFFFD;\u00e9\n'));
    expect(doc.delimiter).toBe(';');
    const records = [];
    for await (const record of doc.records()) {
      records.push(record.fields);
    }
    expect(records).toEqual([
      ['a', 'b'],
      ['\uFFFD', '\u00e9'],
    ]);
  });
});

describe('firstInvalidUtf8', () => {
  it('agrees with a strict TextDecoder on any bytes', () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), (random, text) => {
        for (const bytes of [random, new TextEncoder().encode(text), Uint8Array.from([...new TextEncoder().encode(text), ...random])]) {
          const invalid = firstInvalidUtf8(bytes);
          let valid = true;
          try {
            strict.decode(bytes);
          } catch {
            valid = false;
          }
          expect(invalid === -1).toBe(valid);
          if (invalid >= 0) {
            // Everything before the first invalid byte decodes.
            expect(() => strict.decode(bytes.subarray(0, invalid))).not.toThrow();
          }
        }
      }),
      { seed: 20240611, numRuns: 500 }
    );
  });
});
