/**
 * Names what a file is when it is not CSV text, from its bytes, so that every way a file arrives
 * (bytes downloaded by the bot, a file streamed from disk, text already decoded) says the same:
 * "the file is an Excel workbook (.xlsx)", not "undecodable bytes on line 3". Messages describe
 * the file, never its content.
 */

/** How much of the start of a file the format checks look at. */
export const SNIFF_BYTES = 64 * 1024;

const UTF16 = 'the file is UTF-16 text, not UTF-8; re-export it as UTF-8';
const SAVE_AS_CSV = 'open it in Excel and save it as "CSV UTF-8 (Comma delimited)"';

interface Signature {
  /** The first bytes of such a file. */
  bytes: readonly number[];
  problem: string;
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

/** Formats told by their first bytes (ZIP and HTML need a closer look: see nonCsvProblem). */
const SIGNATURES: readonly Signature[] = [
  { bytes: [0xff, 0xfe], problem: UTF16 },
  { bytes: [0xfe, 0xff], problem: UTF16 },
  {
    bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a],
    problem: `the file is a legacy Excel 97-2003 workbook (.xls), not CSV text: ${SAVE_AS_CSV}`,
  },
  { bytes: ascii('%PDF-'), problem: 'the file is a PDF document, not CSV text: export the data as CSV instead' },
  { bytes: [0x1f, 0x8b], problem: 'the file is gzip-compressed, not CSV text: decompress it and import the CSV inside' },
  { bytes: [0x89, ...ascii('PNG\r\n\x1a\n')], problem: 'the file is a PNG image, not CSV text' },
  { bytes: [0xff, 0xd8, 0xff], problem: 'the file is a JPEG image, not CSV text' },
  { bytes: ascii('GIF87a'), problem: 'the file is a GIF image, not CSV text' },
  { bytes: ascii('GIF89a'), problem: 'the file is a GIF image, not CSV text' },
];

const ZIP = ascii('PK\x03\x04');
const XLSX = `the file is an Excel workbook (.xlsx), not CSV text: ${SAVE_AS_CSV}`;
const ZIP_ARCHIVE = 'the file is a ZIP archive, not CSV text: unpack it and import the CSV files inside';
/** Entry names of an .xlsx package, as they stand (uncompressed) in its local file headers. */
const XLSX_ENTRY = /\[Content_Types\]\.xml|xl\/[\w./-]*\.xml/;
const HTML_START = /^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])/i;
const HTML =
  'the file is an HTML page (perhaps an error or login page saved instead of the export), not CSV text: download the export again';

const utf8 = new TextEncoder();
const lossyDecoder = new TextDecoder('utf-8');

/**
 * What text decoded without `fatal` keeps of a signature: each invalid byte became U+FFFD, which
 * encodes back as EF BF BD. A file read as lossy UTF-8 text starts with this form.
 */
function lossyForm(bytes: readonly number[]): number[] {
  return [...utf8.encode(lossyDecoder.decode(new Uint8Array(bytes)))];
}

/**
 * Longest first: lossy forms can share a start (a legacy workbook's D0 CF becomes the same two
 * U+FFFD as a UTF-16 byte-order mark).
 */
const LOSSY_SIGNATURES: readonly Signature[] = SIGNATURES.map((s) => ({ ...s, bytes: lossyForm(s.bytes) })).sort(
  (a, b) => b.bytes.length - a.bytes.length
);

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
}

/**
 * The problem with a file whose first bytes are `head`, when they show it is not CSV text
 * (a workbook, archive, PDF, image, HTML page or UTF-16 text); undefined when it may be CSV.
 * `lossy`: the bytes are text decoded without `fatal`, encoded again (invalid bytes became EF BF BD).
 */
export function nonCsvProblem(head: Uint8Array, options: { lossy?: boolean } = {}): string | undefined {
  const signature = (options.lossy ? LOSSY_SIGNATURES : SIGNATURES).find((s) => startsWith(head, s.bytes));
  if (signature) {
    return signature.problem;
  }
  if (startsWith(head, ZIP)) {
    return XLSX_ENTRY.test(lossyDecoder.decode(head)) ? XLSX : ZIP_ARCHIVE;
  }
  if (looksLikeUtf16WithoutBom(head)) {
    return UTF16;
  }
  const text = lossyDecoder.decode(head.subarray(0, 1024)).replace(/^\uFEFF/, '');
  return HTML_START.test(text) ? HTML : undefined;
}

/** UTF-16 text without a byte-order mark: every other byte of its ASCII characters is NUL. */
function looksLikeUtf16WithoutBom(head: Uint8Array): boolean {
  const sample = head.subarray(0, 64 - (Math.min(head.length, 64) % 2));
  if (sample.length < 4) {
    return false;
  }
  const nulAt = (parity: number): boolean => sample.every((b, i) => (i % 2 === parity ? b === 0 : b !== 0));
  return nulAt(1) || nulAt(0);
}

/** A NUL byte: not text at all. */
export function binaryProblem(line: number): string {
  return `the file is binary, not CSV text (NUL byte on line ${line})`;
}

/**
 * Bytes that are not UTF-8, at `offset` (on `line`). When the bytes around it read as Windows-1252
 * or Latin-1 text (a spreadsheet's "CSV" export in a Western locale), the message says so.
 */
export function notUtf8Problem(line: number, bytes?: Uint8Array, offset = 0): string {
  const where = `the file is not valid UTF-8 (undecodable bytes on line ${line})`;
  return bytes && looksLikeWindows1252(bytes.subarray(Math.max(0, offset - 4096), offset + 4096))
    ? `${where}; it looks like Windows-1252/Latin-1 text: re-export it as CSV UTF-8`
    : `${where}; re-export it as UTF-8`;
}

/** Bytes 0x80-0x9F that Windows-1252 leaves undefined. */
const UNDEFINED_IN_1252 = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** Printable Windows-1252 / Latin-1 text: no control characters but tab and line ends, no undefined bytes. */
function looksLikeWindows1252(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    const control = b < 0x20 ? b !== 0x09 && b !== 0x0a && b !== 0x0d : b === 0x7f;
    if (control || UNDEFINED_IN_1252.has(b)) {
      return false;
    }
  }
  return true;
}

/**
 * Where the first byte that is not part of a valid UTF-8 sequence is, or -1 when all are valid.
 * Refuses what TextDecoder's `fatal` mode refuses: overlong forms, surrogates, code points past U+10FFFF.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    const [length, min, max] =
      b >= 0xc2 && b <= 0xdf ? [2, 0x80, 0xbf]
      : b === 0xe0 ? [3, 0xa0, 0xbf]
      : b === 0xed ? [3, 0x80, 0x9f]
      : b >= 0xe1 && b <= 0xef ? [3, 0x80, 0xbf]
      : b === 0xf0 ? [4, 0x90, 0xbf]
      : b === 0xf4 ? [4, 0x80, 0x8f]
      : b >= 0xf1 && b <= 0xf3 ? [4, 0x80, 0xbf]
      : [0, 0, 0];
    if (length === 0 || i + length > bytes.length || bytes[i + 1] < min || bytes[i + 1] > max) {
      return i;
    }
    for (let k = 2; k < length; k++) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) {
        return i;
      }
    }
    i += length;
  }
  return -1;
}

/** The 1-based line of a byte offset: line feeds before it, plus one. */
export function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < offset; i = bytes.indexOf(0x0a, i + 1)) {
    line++;
  }
  return line;
}
