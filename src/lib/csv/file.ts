import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import Papa from 'papaparse';
import { ImportFileError } from '../errors';
import type { CsvDocument, CsvRecord } from './document';
import { detectDelimiter, RecordNumberer } from './document';
import { binaryProblem, firstInvalidUtf8, lineAt, nonCsvProblem, notUtf8Problem, SNIFF_BYTES } from './sniff';

/** Bytes read from disk at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Records buffered ahead of the consumer before the file stream is paused. */
const HIGH_WATER_RECORDS = 2000;

/**
 * A CSV document streamed from disk (command line, benchmark): memory stays flat whatever the
 * file size, because records are parsed as the importer consumes them.
 */
export async function csvFromFile(path: string, options: { delimiter?: string } = {}): Promise<CsvDocument> {
  const name = basename(path);
  const head = await readHead(path);
  // The same verdict as decodeCsvBytes gives for these bytes: workbooks, archives, PDFs, images,
  // HTML pages and UTF-16 text are named before any parsing.
  const format = nonCsvProblem(head);
  if (format) {
    throw new ImportFileError(name, format);
  }
  const delimiter = options.delimiter ?? detectDelimiter(firstLine(head));
  return {
    name,
    delimiter,
    records: () => streamRecords(path, name, delimiter),
  };
}

async function readHead(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function firstLine(head: Uint8Array): string {
  const text = new TextDecoder('utf-8').decode(head);
  const end = text.search(/\r?\n/);
  return (end >= 0 ? text.slice(0, end) : text).replace(/^\uFEFF/, '');
}

/**
 * Decodes bytes as strict UTF-8 (a Latin-1 export fails clearly), dropping a byte-order mark.
 * Problems are reported as decodeCsvBytes reports them: binary (NUL byte on line N), or not UTF-8
 * (undecodable bytes on line N, and whether they look like Windows-1252/Latin-1).
 */
function utf8Decoder(name: string): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  /** The line the next chunk starts on. */
  let line = 1;
  const decode = (chunk: Uint8Array): string => {
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      throw new ImportFileError(name, binaryProblem(line - 1 + lineAt(chunk, nul)));
    }
    try {
      return decoder.decode(chunk, { stream: true });
    } catch {
      // -1: the bad sequence began at the end of the previous chunk.
      const bad = Math.max(0, firstInvalidUtf8(chunk));
      throw new ImportFileError(name, notUtf8Problem(line - 1 + lineAt(chunk, bad), chunk, bad));
    }
  };
  return new Transform({
    readableObjectMode: false,
    transform(chunk: Uint8Array, _encoding, callback) {
      try {
        const text = decode(chunk);
        line += lineAt(chunk, chunk.length) - 1;
        callback(null, text);
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        callback(null, decoder.decode());
      } catch {
        // The file ends inside a multi-byte character.
        callback(new ImportFileError(name, notUtf8Problem(line)));
      }
    },
  });
}

async function* streamRecords(path: string, name: string, delimiter: string): AsyncGenerator<CsvRecord> {
  const queue: CsvRecord[] = [];
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let parser: Papa.Parser | undefined;
  let paused = false;
  const numberer = new RecordNumberer(name);
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };

  // Large chunks: papaparse re-parses a row that spans chunks from its start at every chunk, so a
  // 10 MB note took 6.5 s in 64 KB chunks (quadratic) and takes 0.7 s in 1 MB chunks.
  const source = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  const text = source.pipe(utf8Decoder(name));
  source.on('error', (err) => {
    failure = err;
    notify();
  });
  text.on('error', (err) => {
    failure = err;
    notify();
  });

  Papa.parse<string[]>(text as unknown as Papa.LocalFile, {
    delimiter,
    skipEmptyLines: false,
    step: (results, p) => {
      parser = p;
      try {
        queue.push(numberer.next(results));
      } catch (err) {
        failure = err;
        p.abort();
      }
      if (queue.length >= HIGH_WATER_RECORDS && !paused) {
        paused = true;
        p.pause();
      }
      notify();
    },
    complete: () => {
      done = true;
      notify();
    },
    error: (err: Error) => {
      failure = err;
      notify();
    },
  });

  try {
    while (true) {
      if (queue.length > 0) {
        const record = queue.shift() as CsvRecord;
        if (paused && queue.length < HIGH_WATER_RECORDS / 2) {
          paused = false;
          parser?.resume();
        }
        yield record;
        continue;
      }
      if (failure) {
        throw failure;
      }
      if (done) {
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    source.destroy();
  }
}
