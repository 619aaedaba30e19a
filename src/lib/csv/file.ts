import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import Papa from 'papaparse';
import { ImportFileError } from '../errors';
import type { CsvDocument, CsvRecord } from './document';
import { detectDelimiter, RecordNumberer } from './document';

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

/** Decodes bytes as strict UTF-8 (a Latin-1 export fails clearly), dropping a byte-order mark. */
function utf8Decoder(name: string): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let offset = 0;
  const decode = (chunk?: Uint8Array): string => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw new ImportFileError(name, `the file is not valid UTF-8 (near byte ${offset}); re-export it as UTF-8`);
    }
  };
  return new Transform({
    readableObjectMode: false,
    transform(chunk: Uint8Array, _encoding, callback) {
      try {
        const text = decode(chunk);
        offset += chunk.length;
        if (text.includes('\u0000')) {
          throw new ImportFileError(name, 'the file is binary, not CSV text (NUL byte found)');
        }
        callback(null, text);
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        callback(null, decode());
      } catch (err) {
        callback(err as Error);
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

  const source = createReadStream(path);
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
