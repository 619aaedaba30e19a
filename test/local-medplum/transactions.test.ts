import type { Bundle, BundleEntry, Observation, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { batch, outcomeStatus, outcomeText, patient, rejection, statuses, SYSTEM, upsertEntry } from './helpers';

const PATIENT_URN = 'urn:uuid:6f1c9c0e-2b7a-4d0e-9a51-0c4b8f1e2d3a';

function invalidPatientEntry(): BundleEntry {
  return { request: { method: 'POST', url: 'Patient' }, resource: patient('BAD', { birthDate: 'not a date' }) };
}

describe('rule d: transactions are atomic when transactions: true (the default)', () => {
  test('a valid transaction commits every entry and rewrites urn:uuid references', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const response = await medplum.executeBatch(
      batch(
        [
          { fullUrl: PATIENT_URN, request: { method: 'POST', url: 'Patient' }, resource: patient('T1') },
          {
            request: { method: 'POST', url: 'Observation' },
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: PATIENT_URN } },
          },
        ],
        'transaction'
      )
    );
    expect(response.type).toBe('transaction-response');
    expect(statuses(response)).toEqual(['201', '201']);
    const [pat] = medplum.allResources<Patient>('Patient');
    const [obs] = medplum.allResources<Observation>('Observation');
    expect(obs.subject?.reference).toBe(`Patient/${pat.id}`);
  });

  test('one failing entry fails the whole transaction with 400 and rolls back every write', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const existing = await medplum.createResource<Patient>(patient('KEEP', { gender: 'male' }));
    const other = await medplum.createResource<Patient>(patient('OTHER'));
    // The router runs creates, then updates in bundle order: the failing update comes after two writes.
    const err = await rejection(
      medplum.executeBatch(
        batch(
          [
            { request: { method: 'POST', url: 'Patient' }, resource: patient('T2') },
            { request: { method: 'PUT', url: `Patient/${existing.id}` }, resource: { ...existing, gender: 'female' } },
            // A conditional PUT runs in its own nested withTransaction, which commits into the outer one.
            upsertEntry('T3'),
            { request: { method: 'PUT', url: `Patient/${other.id}` }, resource: { ...other, birthDate: 'not a date' } },
          ],
          'transaction'
        )
      )
    );
    expect(outcomeStatus(err)).toBe(400);
    expect(outcomeText(err)).toMatch(/Invalid date/);
    // Nothing of the transaction is visible: no new patient, the update undone, history untouched,
    // and the identifier index forgets the rolled-back create.
    expect(medplum.allResources('Patient')).toHaveLength(2);
    const stored = await medplum.readResource('Patient', existing.id);
    expect(stored.gender).toBe('male');
    expect(stored.meta?.versionId).toBe(existing.meta?.versionId);
    expect((await medplum.readHistory('Patient', existing.id)).entry).toHaveLength(1);
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|T2` })).toHaveLength(0);
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|T3` })).toHaveLength(0);
  });

  test('a rolled-back delete restores the resource', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const existing = await medplum.createResource<Patient>(patient('DEL'));
    await rejection(
      medplum.executeBatch(
        batch([{ request: { method: 'DELETE', url: `Patient/${existing.id}` } }, invalidPatientEntry()], 'transaction')
      )
    );
    expect((await medplum.readResource('Patient', existing.id)).id).toBe(existing.id);
    expect(await medplum.searchResources('Patient', { identifier: `${SYSTEM}|DEL` })).toHaveLength(1);
  });

  test('a transaction nested in a batch entry rolls back only itself and fails only that entry', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const nested = (entries: BundleEntry[]): BundleEntry => ({
      request: { method: 'POST', url: '/' },
      resource: batch(entries, 'transaction'),
    });
    const response = await medplum.executeBatch(
      batch([
        { request: { method: 'POST', url: 'Patient' }, resource: patient('OUTER') },
        nested([{ request: { method: 'POST', url: 'Patient' }, resource: patient('IN-1') }, invalidPatientEntry()]),
        nested([upsertEntry('IN-2')]),
      ])
    );
    expect(statuses(response)).toEqual(['201', '400', '200']);
    expect((response.entry?.[2]?.resource as Bundle).type).toBe('transaction-response');
    const values = medplum.allResources<Patient>('Patient').map((p) => p.identifier?.[0]?.value);
    expect(values.sort()).toEqual(['IN-2', 'OUTER']);
  });

  test('the router caps apply: 9 entries with a conditional one, or 51 updates, are refused whole', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0 });
    const nine = Array.from({ length: 9 }, (_, i) => upsertEntry('C' + i));
    const err = await rejection(medplum.executeBatch(batch(nine, 'transaction')));
    expect(outcomeText(err)).toBe('Transaction requires strict isolation but has too many entries');
    expect(medplum.allResources('Patient')).toHaveLength(0);

    const eight = await medplum.executeBatch(batch(nine.slice(0, 8), 'transaction'));
    expect(statuses(eight)).toEqual(Array(8).fill('201'));

    const created = await medplum.executeBatch(
      batch(Array.from({ length: 43 }, (_, i) => ({ request: { method: 'POST', url: 'Patient' }, resource: patient('U' + i) })))
    );
    expect(statuses(created).every((s) => s === '201')).toBe(true);
    const all = medplum.allResources<Patient>('Patient');
    expect(all).toHaveLength(51);
    const updates = (patients: Patient[]): BundleEntry[] =>
      patients.map((p) => ({ request: { method: 'PUT', url: `Patient/${p.id}` }, resource: { ...p, gender: 'other' } }));
    const err51 = await rejection(medplum.executeBatch(batch(updates(all), 'transaction')));
    expect(outcomeText(err51)).toBe('Transaction contains more update operations than allowed');
    expect(medplum.allResources<Patient>('Patient').some((p) => p.gender === 'other')).toBe(false);

    const fifty = await medplum.executeBatch(batch(updates(all.slice(0, 50)), 'transaction'));
    expect(statuses(fifty)).toEqual(Array(50).fill('200'));
  });
});

describe('rule d: transactions: false runs transactions as batches', () => {
  test('no atomicity and no caps', async () => {
    const medplum = createLocalMedplum({ maxRetries: 0, transactions: false });
    const response = await medplum.executeBatch(batch([upsertEntry('NT1'), invalidPatientEntry()], 'transaction'));
    expect(statuses(response)).toEqual(['201', '400']);
    expect(medplum.allResources('Patient')).toHaveLength(1);

    const nine = Array.from({ length: 9 }, (_, i) => upsertEntry('NC' + i));
    expect(statuses(await medplum.executeBatch(batch(nine, 'transaction')))).toEqual(Array(9).fill('201'));
  });
});
