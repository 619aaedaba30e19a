import type { ResourceWrite, WritingUnit } from '../tables/types';

/** A row that passed validation, with what it writes, waiting for its batch. */
export interface PlannedRow {
  row: number;
  sourceId?: string;
  unit: WritingUnit;
  /** About the bytes the row adds to a request: its mapped resources as JSON (a merge may add what Medplum holds). */
  size: number;
  /** The row's original fields, kept until its result is known (rejected-rows files). */
  fields?: string[];
}

/** One row's batch entry as it goes to the server, serialised once. */
export interface OutgoingRow {
  /** The entry as UTF-8 JSON. */
  entry: Uint8Array;
  /** The entry to send when it is sent again (creates become conditional creates: the first may have landed). */
  retryEntry?: Uint8Array;
  /** Writes in it, for the quota. */
  writes: number;
}

export function unitWrites(unit: WritingUnit): ResourceWrite[] {
  return unit.kind === 'single' ? [unit.write] : unit.writes;
}

/** Plans a row for batching: its size is measured once, on its mapped resources. */
export function planRow(row: number, sourceId: string | undefined, unit: WritingUnit, fields?: string[]): PlannedRow {
  let size = 64;
  for (const write of unitWrites(unit)) {
    size += utf8Length(JSON.stringify(write.resource)) + 96;
  }
  return { row, sourceId, unit, fields, size };
}

/** UTF-8 bytes of a text, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) {
      bytes += code >= 0x800 && (code < 0xd800 || code > 0xdfff) ? 2 : 1;
    }
  }
  return bytes;
}

const utf8 = new TextEncoder();
const BODY_START = utf8.encode('{"resourceType":"Bundle","type":"batch","entry":[');
const BODY_END = utf8.encode(']}');
const COMMA = 0x2c;

/** A batch request body from entries already serialised: nothing is serialised or encoded twice. */
export function batchBody(entries: readonly Uint8Array[]): Uint8Array {
  let size = BODY_START.length + BODY_END.length + Math.max(0, entries.length - 1);
  for (const entry of entries) {
    size += entry.length;
  }
  const body = new Uint8Array(size);
  body.set(BODY_START, 0);
  let offset = BODY_START.length;
  entries.forEach((entry, i) => {
    if (i > 0) {
      body[offset++] = COMMA;
    }
    body.set(entry, offset);
    offset += entry.length;
  });
  body.set(BODY_END, offset);
  return body;
}

/** UTF-8 JSON of an entry. */
export function encodeEntry(entry: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(entry));
}

/**
 * Groups planned rows into batches bounded by entry count and by request size (the server refuses
 * JSON bodies over 1 MB). Sizes are estimates made at planning (PlannedRow.size); the executor
 * splits a batch further if its entries, once planned against Medplum, are larger.
 */
export class BatchAssembler {
  private rows: PlannedRow[] = [];
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number
  ) {}

  /** Adds a row; returns the previous batch when this row starts a new one. */
  add(row: PlannedRow): PlannedRow[] | undefined {
    const count = unitWrites(row.unit).length;
    let full: PlannedRow[] | undefined;
    if (this.rows.length > 0 && (this.entries + count > this.maxEntries || this.bytes + row.size > this.maxBytes)) {
      full = this.flush();
    }
    this.rows.push(row);
    this.entries += count;
    this.bytes += row.size;
    return full;
  }

  flush(): PlannedRow[] | undefined {
    if (this.rows.length === 0) {
      return undefined;
    }
    const rows = this.rows;
    this.rows = [];
    this.entries = 0;
    this.bytes = 0;
    return rows;
  }
}
