import { ImportFileError } from '../errors';
import type { CsvDocument } from './document';
import { checkedTextDocument } from './document';
import { binaryProblem, firstInvalidUtf8, lineAt, nonCsvProblem, notUtf8Problem, SNIFF_BYTES } from './sniff';

/**
 * A CSV document over a file's bytes (a downloaded upload): strict UTF-8, byte-order mark dropped.
 * Throws ImportFileError naming what the bytes are when they are not CSV text (UTF-16 text, an
 * Excel workbook, a ZIP archive, a PDF, an image, an HTML page, binary data) or not UTF-8 (with
 * the line, and whether they look like Windows-1252/Latin-1). csvFromFile says the same for the
 * same bytes. Runs in the bot runtime: no Buffer.
 */
export function decodeCsvBytes(name: string, bytes: Uint8Array, options: { delimiter?: string } = {}): CsvDocument {
  const format = nonCsvProblem(bytes.subarray(0, SNIFF_BYTES));
  if (format) {
    throw new ImportFileError(name, format);
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new ImportFileError(name, binaryProblem(lineAt(bytes, nul)));
  }
  let text: string;
  try {
    // ignoreBOM false: a UTF-8 byte-order mark is dropped.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const offset = Math.max(0, firstInvalidUtf8(bytes));
    throw new ImportFileError(name, notUtf8Problem(lineAt(bytes, offset), bytes, offset));
  }
  return checkedTextDocument(name, text, options);
}
