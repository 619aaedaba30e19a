// Reads per second of the value readers: `npx tsx test/values/measure-read-speed.ts`.
// Zone-less cells are UTC wall times read in New York, so a few fall in its daylight-saving gaps: those are the problems counted.
// Not a test (timings vary by machine); the target is well above 300,000 reads per second.
import { compileDateFormats } from '../../src/lib/values/date-time';
import type { DateKind, DateReader } from '../../src/lib/values/date-time';
import { readDecimal } from '../../src/lib/values/numbers';

const CELLS = 1_000_000;

function reader(kind: DateKind, formats: string[]): DateReader {
  const compiled = compileDateFormats(kind, formats);
  if ('error' in compiled) {
    throw new Error(compiled.error);
  }
  return compiled;
}

/** Instants scattered over `years` years from `from` (a multiplicative hash of the index), so the zone cache meets many days. */
function cells(count: number, from: number, years: number, write: (date: Date) => string): string[] {
  const start = Date.UTC(from, 0, 1);
  const span = years * 365.25 * 86_400_000;
  const spread = (i: number): number => ((i * 2654435761) % 4294967296) / 4294967296;
  return Array.from({ length: count }, (_, i) => write(new Date(start + Math.floor(spread(i) * span))));
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
const isoZ = (d: Date): string => d.toISOString();
const isoOffset = (d: Date): string => `${d.toISOString().slice(0, 19)}-05:00`;
const us = (d: Date): string => `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${d.getUTCFullYear()}`;
const local = (d: Date): string => `${d.toISOString().slice(0, 10)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

function measure(label: string, read: (text: string) => unknown, texts: readonly string[]): void {
  let problems = 0;
  for (let round = 0; round < 2; round++) {
    problems = 0;
    const started = performance.now();
    for (const text of texts) {
      const result = read(text) as object;
      if ('problem' in result) {
        problems++;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`${label.padEnd(58)} ${round === 0 ? 'first ' : 'again '} ${Math.round(texts.length / seconds).toLocaleString('en-US').padStart(11)} reads/s  (${problems} problems)`);
  }
}

const dateTime = reader('dateTime', ['ISO']);
const date = reader('date', ['MM/DD/YYYY']);
const fixedDateTime = reader('dateTime', ['YYYY-MM-DD hh:mm:ss']);
const newYork = (reader: DateReader) => (text: string) => reader.read(text, 'America/New_York');
measure('ISO with Z, dateTime', (t) => dateTime.read(t, 'UTC'), cells(CELLS, 1990, 30, isoZ));
measure('ISO with -05:00, dateTime', (t) => dateTime.read(t, 'UTC'), cells(CELLS, 1990, 30, isoOffset));
measure('MM/DD/YYYY, date', (t) => date.read(t, 'UTC'), cells(CELLS, 1990, 30, us));
measure('ISO zone-less in America/New_York, 1990-2020', newYork(dateTime), cells(CELLS, 1990, 30, (d) => isoZ(d).slice(0, 19)));
measure('YYYY-MM-DD hh:mm:ss in America/New_York, 1990-2020', newYork(fixedDateTime), cells(CELLS, 1990, 30, local));
measure('YYYY-MM-DD hh:mm:ss in America/New_York, 1800-2100', newYork(fixedDateTime), cells(CELLS, 1800, 300, local));
measure('decimal', (t) => readDecimal(t), Array.from({ length: CELLS }, (_, i) => String((i * 37) / 100)));
