import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { ResourceWrite, WriteUnit } from '../tables/types';

/** A row that passed validation, with what it writes. */
export interface PlannedRow {
  row: number;
  sourceId?: string;
  unit: WriteUnit;
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

/** The batch bundle for some rows: the probe first, then one entry per row. */
export function batchBundle(rows: readonly PlannedRow[]): { bundle: Bundle; probed: boolean } {
  const probe = probeEntry(rows.map((r) => r.unit));
  const entries = rows.map((r) => unitEntry(r.unit));
  return {
    bundle: { resourceType: 'Bundle', type: 'batch', entry: probe ? [probe, ...entries] : entries },
    probed: probe !== undefined,
  };
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

  /** The JSON size of a row's entry, to reject rows that could never fit a request. */
  static sizeOf(unit: WriteUnit): number {
    return new TextEncoder().encode(JSON.stringify(unitEntry(unit))).length;
  }

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
