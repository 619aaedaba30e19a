import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import Papa from 'papaparse';
import { ImportFileError } from '../errors';
import type { CsvDocument, CsvRecord } from './document';
import { detectDelimiter, RecordNumberer } from './document';

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
  const delimiter = options.delimiter ?? detectDelimiter(await readFirstLine(path));
  return {
    name,
    delimiter,
    records: () => streamRecords(path, name, delimiter),
  };
}

async function readFirstLine(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = new TextDecoder('utf-8').decode(buffer.subarray(0, bytesRead));
    const end = head.search(/\r?\n/);
    return (end >= 0 ? head.slice(0, end) : head).replace(/^\uFEFF/, '');
  } finally {
    await handle.close();
  }
}

/**
 * Decodes bytes as strict UTF-8 (a Latin-1 export fails clearly), dropping a byte-order mark.
 * Problems are reported as csvFromText reports them: UTF-16, binary (NUL byte on line N), or
 * not UTF-8 (undecodable bytes on line N).
 */
function utf8Decoder(name: string): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let offset = 0;
  /** The line the next chunk starts on. */
  let line = 1;
  const notUtf8 = (atLine: number): ImportFileError =>
    new ImportFileError(name, `the file is not valid UTF-8 (undecodable bytes on line ${atLine}); re-export it as UTF-8`);
  const decode = (chunk: Uint8Array): string => {
    // FF FE or FE FF at the start: a UTF-16 byte-order mark (Excel's "Unicode Text" export).
    if (offset === 0 && ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff))) {
      throw new ImportFileError(name, 'the file is UTF-16 text, not UTF-8; re-export it as UTF-8');
    }
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      throw new ImportFileError(name, `the file is binary, not CSV text (NUL byte on line ${line + newlines(chunk, nul)})`);
    }
    try {
      return decoder.decode(chunk, { stream: true });
    } catch {
      const lossy = new TextDecoder('utf-8').decode(chunk);
      const bad = lossy.indexOf('\uFFFD');
      throw notUtf8(line + (bad >= 0 ? lossy.slice(0, bad).split('\n').length - 1 : 0));
    }
  };
  return new Transform({
    readableObjectMode: false,
    transform(chunk: Uint8Array, _encoding, callback) {
      try {
        const text = decode(chunk);
        offset += chunk.length;
        line += newlines(chunk, chunk.length);
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
        callback(notUtf8(line));
      }
    },
  });
}

/** Line feeds in the first `end` bytes. */
function newlines(bytes: Uint8Array, end: number): number {
  let count = 0;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < end; i = bytes.indexOf(0x0a, i + 1)) {
    count++;
  }
  return count;
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
