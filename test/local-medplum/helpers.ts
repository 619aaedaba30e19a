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
