import { getStatus, OperationOutcomeError } from '@medplum/core';
import type { Bundle, BundleEntry, Patient } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import type { LocalMedplum } from '../../src/lib/local-medplum';

export const SYSTEM = 'https://example.org/patient-id';

export function patient(value: string, extra: Partial<Patient> = {}): Patient {
  return { resourceType: 'Patient', identifier: [{ system: SYSTEM, value }], ...extra };
}

/** A conditional PUT entry keyed by the patient's identifier, as the import bots send them. */
export function upsertEntry(value: string, extra: Partial<Patient> = {}): BundleEntry {
  return {
    request: { method: 'PUT', url: `Patient?identifier=${SYSTEM}|${value}` },
    resource: patient(value, extra),
  };
}

export function batch(entry: BundleEntry[], type: 'batch' | 'transaction' = 'batch'): Bundle {
  return { resourceType: 'Bundle', type, entry };
}

export function statuses(bundle: Bundle): string[] {
  return (bundle.entry ?? []).map((e) => e.response?.status ?? '?');
}

/** Awaits a rejected MedplumClient call and returns its OperationOutcomeError. */
export async function rejection(promise: Promise<unknown>): Promise<OperationOutcomeError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e
  );
  expect(err).toBeInstanceOf(OperationOutcomeError);
  return err as OperationOutcomeError;
}

export function outcomeText(err: OperationOutcomeError): string {
  return err.outcome.issue.map((i) => i.details?.text ?? '').join('; ');
}

export function outcomeStatus(err: OperationOutcomeError): number {
  return getStatus(err.outcome);
}

/** Sends one request through the local server's fetch, to look at the raw status and headers. */
export function rawFetch(medplum: LocalMedplum, method: string, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit = { method, headers: { accept: 'application/fhir+json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { accept: 'application/fhir+json', 'content-type': 'application/fhir+json' };
  }
  return medplum.client.mockFetch(medplum.getBaseUrl() + path, init);
}

/** Points left in the quota window, as the last response's RateLimit header told MedplumClient. */
export function pointsLeft(medplum: LocalMedplum): number {
  const [limit] = medplum.rateLimitStatus();
  expect(limit?.name).toBe('fhirInteractions');
  return limit.remainingUnits;
}

/**
 * Measures what a call costs the way a user can: the difference between the RateLimit headers of the
 * responses before and after it. The quota must be large enough that nothing is refused, and a
 * previous response must have set the header (see `primeRateLimit`).
 */
export async function costOf(medplum: LocalMedplum, call: () => Promise<unknown>): Promise<number> {
  const before = pointsLeft(medplum);
  await call();
  return before - pointsLeft(medplum);
}

/** Makes one cheap request (a read of a missing resource, 1 point) so that a RateLimit header is known. */
export async function primeRateLimit(medplum: LocalMedplum): Promise<void> {
  await medplum.readResource('Patient', 'no-such-patient').catch(() => undefined);
}
