import type { BundleEntry } from '@medplum/fhirtypes';
import { identifierQuery, tokenQuery } from '../fhir/search-values';
import type { ResourceWrite, WritingUnit } from '../tables/types';

/** A row that passed validation, with what it writes. */
export interface PlannedRow {
  row: number;
  sourceId?: string;
  unit: WritingUnit;
  /** The unit's batch entry as UTF-8 JSON, made once: its length is the row's size, and it is copied into the request body. */
  entryBytes: Uint8Array;
  /** `[resourceType, token]` of each write, the token escaped for a URL, for the probe's searches. */
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
export function unitEntry(unit: WritingUnit): BundleEntry {
  if (unit.kind === 'single') {
    return putEntry(unit.write);
  }
  return {
    request: { method: 'POST', url: '/' },
    resource: { resourceType: 'Bundle', type: 'transaction', entry: unit.writes.map(putEntry) },
  };
}

export function unitWrites(unit: WritingUnit): ResourceWrite[] {
  return unit.kind === 'single' ? [unit.write] : unit.writes;
}

/**
 * Longest query string one probe search may have. The server refuses query strings over 70,000
 * characters (fhir-router; the 5.0 server took 85,000): stay well under the smaller.
 */
export const MAX_PROBE_QUERY_CHARS = 60_000;
/** Most tokens in one probe search: a search page holds at most 1,000 resources. */
export const MAX_PROBE_TOKENS = 500;

/** One probe search per resource type and slice of tokens, each within the URL and page limits. */
export function probeSearchUrls(rows: readonly PlannedRow[]): string[] {
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
  const urls: string[] = [];
  for (const [type, tokens] of byType) {
    let slice: string[] = [];
    let chars = 0;
    const flush = (): void => {
      if (slice.length) {
        // Twice the tokens: identifiers that differ only in case may both match one token.
        urls.push(`${type}?identifier=${slice.join(',')}&_count=${Math.min(1000, slice.length * 2)}&_elements=identifier`);
      }
      slice = [];
      chars = 0;
    };
    for (const token of tokens) {
      if (slice.length >= MAX_PROBE_TOKENS || chars + token.length + 1 > MAX_PROBE_QUERY_CHARS - 100) {
        flush();
      }
      slice.push(token);
      chars += token.length + 1;
    }
    flush();
  }
  return urls;
}

/**
 * The probe: a nested bundle of searches, placed first, that reads the current version of every
 * resource the batch is about to write. The server runs nested bundles before the other entries,
 * so the probe sees the state *before* the writes; comparing versions afterwards tells "updated"
 * from "unchanged" (both answer 200) at no extra request. It is a transaction-typed bundle
 * because nested transactions run first, before nested batches. Each search stays within the
 * server's query-length and page limits.
 */
export function probeEntry(rows: readonly PlannedRow[]): BundleEntry | undefined {
  const urls = probeSearchUrls(rows);
  if (urls.length === 0) {
    return undefined;
  }
  return {
    request: { method: 'POST', url: '/' },
    resource: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: urls.map((url) => ({ request: { method: 'GET', url } })),
    },
  };
}

/** Plans a row: its entry is serialised and encoded here, once. */
export function planRow(row: number, sourceId: string | undefined, unit: WritingUnit, fields?: string[]): PlannedRow {
  const probeTokens = unitWrites(unit).map((w): [string, string] => [
    w.resource.resourceType,
    tokenQuery(w.match.system, w.match.value),
  ]);
  return { row, sourceId, unit, fields, entryBytes: utf8.encode(JSON.stringify(unitEntry(unit))), probeTokens };
}

/** The bytes a row adds to a request: its entry, and its tokens in the probe. */
export function plannedSize(row: PlannedRow): number {
  let size = row.entryBytes.length + 1;
  for (const [, token] of row.probeTokens) {
    size += token.length + 1;
  }
  return size;
}

const utf8 = new TextEncoder();
const BODY_START = utf8.encode('{"resourceType":"Bundle","type":"batch","entry":[');
const BODY_END = utf8.encode(']}');
const COMMA = 0x2c;

/**
 * The batch request body for some rows, as UTF-8 JSON: the probe first, then one entry per row.
 * Copied together from the bytes made at planning: no row is serialised or encoded twice.
 */
export function batchBody(rows: readonly PlannedRow[]): { body: Uint8Array; probed: boolean; probeSearches: number } {
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
  const probeSearches = (probe?.resource as { entry?: unknown[] } | undefined)?.entry?.length ?? 0;
  return { body, probed: probe !== undefined, probeSearches };
}

/**
 * Groups planned rows into batches bounded by entry count and by request size (the server refuses
 * JSON bodies over 1 MB). Sizes are measured on the serialised entries and probe tokens
 * (plannedSize).
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
