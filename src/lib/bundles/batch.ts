import type { BundleEntry } from '@medplum/fhirtypes';
import type { ResourceWrite, WriteUnit } from '../tables/types';

/** A row that passed validation, with what it writes. */
export interface PlannedRow {
  row: number;
  sourceId?: string;
  unit: WriteUnit;
  /** The unit's batch entry, serialised once: it gives the row's size and its part of the request body. */
  entryJson: string;
  /** The row's original fields, kept until its result is known (rejected-rows files). */
  fields?: string[];
}

/**
 * Search values go into request URLs: characters that URL parsing would change
 * ('+' becomes a space, '&' and '#' end the value) are percent-encoded.
 */
export function searchValue(value: string): string {
  return value.replace(/[%&#+]/g, (c) => encodeURIComponent(c));
}

/** The key a write is matched on: `Type|system|value`. */
export function writeKey(write: ResourceWrite): string {
  return `${write.resource.resourceType}|${write.match.system}|${write.match.value}`;
}

export function conditionalUrl(write: ResourceWrite): string {
  return `${write.resource.resourceType}?identifier=${searchValue(write.match.system)}|${searchValue(write.match.value)}`;
}

function putEntry(write: ResourceWrite): BundleEntry {
  return {
    ...(write.fullUrl ? { fullUrl: write.fullUrl } : {}),
    request: { method: 'PUT', url: conditionalUrl(write) },
    resource: write.resource,
  };
}

/**
 * One outer batch entry per unit: a conditional PUT, or a nested transaction bundle
 * (`POST /` with the inner bundle; `url: 'Bundle'` would store the bundle as a resource).
 */
export function unitEntry(unit: WriteUnit): BundleEntry {
  if (unit.kind === 'single') {
    return putEntry(unit.write);
  }
  return {
    request: { method: 'POST', url: '/' },
    resource: { resourceType: 'Bundle', type: 'transaction', entry: unit.writes.map(putEntry) },
  };
}

export function unitWrites(unit: WriteUnit): ResourceWrite[] {
  return unit.kind === 'single' ? [unit.write] : unit.writes;
}

/**
 * The probe: a nested bundle of searches, placed first, that reads the current version of every
 * resource the batch is about to write. The server runs nested bundles before the other entries,
 * so the probe sees the state *before* the writes; comparing versions afterwards tells "updated"
 * from "unchanged" (both answer 200) at no extra request. It is a transaction-typed bundle
 * because nested transactions run first, before nested batches.
 */
export function probeEntry(units: readonly WriteUnit[]): BundleEntry | undefined {
  const byType = new Map<string, string[]>();
  for (const unit of units) {
    for (const write of unitWrites(unit)) {
      const type = write.resource.resourceType;
      const list = byType.get(type) ?? [];
      list.push(`${searchValue(write.match.system)}|${searchValue(write.match.value)}`);
      byType.set(type, list);
    }
  }
  if (byType.size === 0) {
    return undefined;
  }
  return {
    request: { method: 'POST', url: '/' },
    resource: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [...byType].map(([type, tokens]) => ({
        request: {
          method: 'GET',
          url: `${type}?identifier=${tokens.join(',')}&_count=${Math.min(1000, tokens.length * 2)}&_elements=identifier`,
        },
      })),
    },
  };
}

/** Plans a row: its entry is serialised here, once. */
export function planRow(row: number, sourceId: string | undefined, unit: WriteUnit, fields?: string[]): PlannedRow {
  return { row, sourceId, unit, fields, entryJson: JSON.stringify(unitEntry(unit)) };
}

/**
 * The batch request body for some rows, as JSON text: the probe first, then one entry per row.
 * Built from the entries serialised at planning, so no row is serialised twice.
 */
export function batchBody(rows: readonly PlannedRow[]): { body: string; probed: boolean } {
  const probe = probeEntry(rows.map((r) => r.unit));
  const entries = rows.map((r) => r.entryJson);
  if (probe) {
    entries.unshift(JSON.stringify(probe));
  }
  return { body: `{"resourceType":"Bundle","type":"batch","entry":[${entries.join(',')}]}`, probed: probe !== undefined };
}

/** The UTF-8 size of a string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) {
      // 2 bytes up to U+07FF, 3 above; a surrogate pair (4 bytes) is two 3-byte-counted halves, minus 2.
      bytes += code < 0x800 ? 1 : code >= 0xd800 && code <= 0xdfff ? 1 : 2;
    }
  }
  return bytes;
}

/**
 * Groups planned rows into batches bounded by entry count and by request size (the server refuses
 * JSON bodies over 1 MB). Sizes are measured on the serialised entries.
 */
export class BatchAssembler {
  private rows: PlannedRow[] = [];
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number
  ) {}

  /** Fits a row whose size was measured; returns the previous batch when this row starts a new one. */
  add(row: PlannedRow, size: number): PlannedRow[] | undefined {
    const count = unitWrites(row.unit).length;
    let full: PlannedRow[] | undefined;
    if (this.rows.length > 0 && (this.entries + count > this.maxEntries || this.bytes + size > this.maxBytes)) {
      full = this.flush();
    }
    this.rows.push(row);
    this.entries += count;
    this.bytes += size;
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
