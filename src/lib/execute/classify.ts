import { operationOutcomeToString } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import type { PlannedRow } from '../bundles/batch';
import { unitWrites, writeKey } from '../bundles/batch';
import type { RowError, RowResult } from '../report';
import type { ResourceWrite } from '../tables/types';
import type { EntryResult, ExecutedBatch } from './executor';

/** Which column holds the source id behind a conditional reference to each resource type. */
export type ReferenceColumns = Readonly<Record<string, string>>;

type WriteState =
  | { state: 'created' | 'updated' | 'unchanged'; unverified?: boolean }
  | { state: 'failed'; message: string };

/** Said of a row written with 200 whose version before the write is unknown. */
export const UNVERIFIED_REASON = "written; the server's answers did not tell whether it changed anything";

/**
 * Turns one executed batch into one result per row; undefined for a row the executor stopped
 * before writing (it stays for the next run).
 */
export function classifyBatch(
  rows: readonly PlannedRow[],
  batch: ExecutedBatch,
  references: ReferenceColumns
): (RowResult | undefined)[] {
  return rows.map((row, i) => classifyRow(row, batch.results[i], batch, references));
}

function classifyRow(
  row: PlannedRow,
  result: EntryResult,
  batch: ExecutedBatch,
  references: ReferenceColumns
): RowResult | undefined {
  const base = { row: row.row, sourceId: row.sourceId };
  const fail = (message: string, column?: string, missingParent?: string): RowResult => ({
    ...base,
    state: 'failed',
    fields: row.fields,
    errors: [{ row: row.row, sourceId: row.sourceId, column, message } satisfies RowError],
    ...(missingParent ? { missingParent } : {}),
  });
  const failWith = (prefix: string, serverMessage: string): RowResult => {
    const { message, column, missingParent } = explain(serverMessage, references);
    return fail(prefix + message, column, missingParent);
  };
  const written = (state: 'created' | 'updated' | 'unchanged', unverified: boolean): RowResult =>
    unverified ? { ...base, state, reason: UNVERIFIED_REASON } : { ...base, state };

  if (result.kind === 'stopped') {
    return undefined;
  }
  if (result.kind === 'request-failed') {
    return fail(`not written: request failed (${result.status || 'network error'}): ${result.message}`);
  }
  const writes = unitWrites(row.unit);
  const entryStatus = result.entry.response?.status ?? '';

  if (row.unit.kind === 'single') {
    const state = writeState(writes[0], result.entry, batch);
    if (state.state === 'failed') {
      return failWith('', state.message);
    }
    return written(state.state, Boolean(state.unverified));
  }

  // A nested transaction. Refused whole (transaction mode): nothing of it was written.
  const inner = (result.entry.resource as Bundle | undefined)?.entry;
  if (!entryStatus.startsWith('2') || !inner) {
    return failWith(`${labels(writes)} not written (the transaction was rolled back): `, outcomeText(result.entry));
  }

  // Run entry by entry (a project without transactions): report a pair that half-landed.
  const states = writes.map((write, i) => writeState(write, inner[i], batch));
  const failedAt = states.findIndex((s) => s.state === 'failed');
  if (failedAt >= 0) {
    const failed = states[failedAt] as { state: 'failed'; message: string };
    const { message, column, missingParent } = explain(failed.message, references);
    const landed = writes.filter((_, i) => states[i].state !== 'failed').map((w) => w.label);
    const half = landed.length
      ? `; the ${landed.join(' and ')} was written without it: fix the row and re-run the file to complete it`
      : '';
    // A half-written pair is not simply waiting for its parent: it is reported now.
    return fail(`${writes[failedAt].label} not written: ${message}${half}`, column, landed.length ? undefined : missingParent);
  }
  const unverified = states.some((s) => s.state !== 'failed' && s.unverified);
  if (states[0].state === 'created') {
    return written('created', unverified);
  }
  return written(states.every((s) => s.state === 'unchanged') ? 'unchanged' : 'updated', unverified);
}

function writeState(write: ResourceWrite, entry: BundleEntry | undefined, batch: ExecutedBatch): WriteState {
  const status = entry?.response?.status ?? '';
  if (status.startsWith('201')) {
    return { state: 'created' };
  }
  if (status.startsWith('200')) {
    const key = writeKey(write);
    if (!batch.before.has(key)) {
      return { state: 'updated', unverified: true };
    }
    const before = batch.before.get(key);
    if (before === null) {
      // Absent when this import first probed it: an earlier attempt, whose answer was lost, created it.
      return { state: 'created' };
    }
    return { state: before === entry?.resource?.meta?.versionId ? 'unchanged' : 'updated' };
  }
  return { state: 'failed', message: outcomeText(entry) };
}

function outcomeText(entry: BundleEntry | undefined): string {
  const outcome = (entry?.response?.outcome ?? entry?.resource) as OperationOutcome | undefined;
  const status = entry?.response?.status ?? 'no status';
  if (outcome?.resourceType === 'OperationOutcome') {
    return `${operationOutcomeToString(outcome)} (${status})`;
  }
  return `server answered ${status}`;
}

function labels(writes: ResourceWrite[]): string {
  return writes.map((w) => w.label).join(' and ');
}

const UNRESOLVED_REFERENCE = /Conditional reference '([A-Za-z]+)\?identifier=([^|']*)\|(.*?)' (did not match any|matched multiple)/;

/** A value as written by search-values.ts, back to the source text (percent-decoded, FHIR-unescaped). */
function decodeSearchValue(raw: string): string {
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // not percent-encoded: keep it as it is
  }
  return decoded.replace(/\\(.)/g, '$1');
}

/**
 * Server messages made readable: an unresolved conditional reference names the source id and
 * the column it came from (e.g. "patient_id P999 is not in Medplum").
 */
export function explain(
  message: string,
  references: ReferenceColumns
): { message: string; column?: string; missingParent?: string } {
  const match = UNRESOLVED_REFERENCE.exec(message);
  if (!match) {
    return { message };
  }
  const [, resourceType, rawSystem, rawValue, kind] = match;
  const system = decodeSearchValue(rawSystem);
  const value = decodeSearchValue(rawValue);
  const column = references[resourceType];
  const what = column ? `${column} ${value}` : `${resourceType} ${value}`;
  if (kind === 'did not match any') {
    return {
      column,
      missingParent: resourceType,
      message: `${what} is not in Medplum (no ${resourceType} with identifier ${system}|${value}); import it first`,
    };
  }
  return { column, message: `${what} matches more than one ${resourceType} in Medplum (identifier ${system}|${value}); resolve the duplicates first` };
}
