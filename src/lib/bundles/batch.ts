import type { BundleEntry } from '@medplum/fhirtypes';
import { identifierQuery, tokenQuery } from '../fhir/search-values';
import type { ResourceWrite, WriteUnit } from '../tables/types';

/** A row that passed validation, with what it writes. */
export interface PlannedRow {
  row: number;
  sourceId?: string;
  unit: WriteUnit;
  /** The unit's batch entry as UTF-8 JSON, made once: its length is the row's size, and it is copied into the request body. */
  entryBytes: Uint8Array;
  /** `[resourceType, 'system|value']` of each write, for the probe's searches. */
  probeTokens: [string, string][];
  /** The row's original fields, kept until its result is known (rejected-rows files). */
  fields?: string[];
}

/** The key a write is matched on: `Type|system|value`. */
export function writeKey(write: ResourceWrite): string {
  return `${write.resource.resourceType}|${write.match.system}|${write.match.value}`;
}

export function conditionalUrl(write: ResourceWrite): string {
  return identifierQuery(write.resource.resourceType, write.match.system, write.match.value);
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
export function probeEntry(rows: readonly PlannedRow[]): BundleEntry | undefined {
  const byType = new Map<string, string[]>();
  for (const row of rows) {
    for (const [type, token] of row.probeTokens) {
      const list = byType.get(type);
      if (list) {
        list.push(token);
      } else {
        byType.set(type, [token]);
      }
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

/** Plans a row: its entry is serialised and encoded here, once. */
export function planRow(row: number, sourceId: string | undefined, unit: WriteUnit, fields?: string[]): PlannedRow {
  const probeTokens = unitWrites(unit).map((w): [string, string] => [
    w.resource.resourceType,
    tokenQuery(w.match.system, w.match.value),
  ]);
  return { row, sourceId, unit, fields, entryBytes: utf8.encode(JSON.stringify(unitEntry(unit))), probeTokens };
}

const utf8 = new TextEncoder();
const BODY_START = utf8.encode('{"resourceType":"Bundle","type":"batch","entry":[');
const BODY_END = utf8.encode(']}');
const COMMA = 0x2c;

/**
 * The batch request body for some rows, as UTF-8 JSON: the probe first, then one entry per row.
 * Copied together from the bytes made at planning: no row is serialised or encoded twice.
 */
export function batchBody(rows: readonly PlannedRow[]): { body: Uint8Array; probed: boolean } {
  const probe = probeEntry(rows);
  const entries: Uint8Array[] = probe ? [utf8.encode(JSON.stringify(probe))] : [];
  for (const row of rows) {
    entries.push(row.entryBytes);
  }
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
  return { body, probed: probe !== undefined };
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
