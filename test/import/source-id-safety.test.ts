// Property: no row reaches beyond its own records, whatever its source id holds. On a real server
// a '?' in an id once turned `PUT Patient?identifier=SYS|P001?x` into an update of P001. Here ids
// are generated from the whole printable Unicode range plus URL- and FHIR-significant, invisible and
// bidi characters, imported next to Patients stored under other ids, and used as references.
import type { WithId } from '@medplum/core';
import type { Encounter, Patient } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvFromText, defaultSettings, identifierSystem, importCsv } from '../../src/lib';
import type { RowResult } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { refusedCharacters } from '../../src/lib/tables/identifier-chars';

const PATIENT_SYSTEM = identifierSystem(defaultSettings(), 'patient-id');

/** Characters with a meaning in URLs, FHIR searches or CSV, and characters that do not show. */
const SIGNIFICANT = [
  '?', '&', '#', '%', '+', ',', '|', '$', '\\', '=', '/', "'", '"', ' ', ':', ';', '*', '(', ')',
  '%20', '%7C', '%2C', '\\,', '\\|', '_id=', '&_id=', '?_id=',
  '\u00a0', '\u3000', '\t', '\r\n', '\u0007', '\u007f', '\u0085',
  '\u200b', '\u200c', '\u200d', '\u2060', '\u00ad', '\ufeff', '\u2028', '\u2029',
  '\u200e', '\u200f', '\u061c', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069',
  '\ue000', '\u0378', '\ud800', '\udfff', '\u212a', '\u0130', '\u00df',
];

/** Pieces that make ids look like the stored ones, so a broken escape would hit a neighbour. */
const LOOKALIKE = ['P', 'P001', '001', '1', 'p001', 'A'];

const idPiece = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SIGNIFICANT) },
  { weight: 3, arbitrary: fc.constantFrom(...LOOKALIKE) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-composite', minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }) }
);

/** NUL and U+FFFD make the whole file fail its text checks (the corpus covers those), not a row. */
const sourceId = fc
  .array(idPiece, { minLength: 1, maxLength: 6 })
  .map((pieces) => pieces.join(''))
  .filter((id) => !/[\u0000\uFFFD]/.test(id));

/** Ids as the importer reads them: trimmed; one file holds each case-folded id once. */
const distinctIds = (min: number, max: number): fc.Arbitrary<string[]> =>
  fc.uniqueArray(sourceId, { minLength: min, maxLength: max, selector: (id) => id.trim().toLowerCase() });

function accepted(id: string): boolean {
  const value = id.trim();
  return value !== '' && value.length <= 256 && refusedCharacters(value) === undefined;
}

/**
 * Ids of other patients that a wrong escape could reach: the pieces between significant
 * characters, a percent-decoded form, and a few fixed ones. None equals a generated id
 * (case-insensitively: that would be the same id to the server).
 */
function neighbourIds(generated: readonly string[]): string[] {
  const taken = new Set(generated.map((id) => id.trim().toLowerCase()));
  const candidates = ['P001', 'P', '1', 'A'];
  for (const id of generated) {
    candidates.push(...id.split(/[^\p{L}\p{N}]+/u));
    try {
      candidates.push(decodeURIComponent(id));
    } catch {
      // not percent-encoded
    }
  }
  const neighbours = new Map<string, string>();
  for (const candidate of candidates.map((c) => c.trim())) {
    if (accepted(candidate) && !taken.has(candidate.toLowerCase())) {
      neighbours.set(candidate.toLowerCase(), candidate);
    }
  }
  return [...neighbours.values()];
}

function quoted(cell: string): string {
  return `"${cell.replace(/"/g, '""')}"`;
}

async function importRows(medplum: LocalMedplum, name: string, lines: string[]): Promise<Map<number, RowResult>> {
  const results = new Map<number, RowResult>();
  await importCsv(medplum, csvFromText(name, lines.join('\n')), { onRowResult: (r) => results.set(r.row, r) });
  return results;
}

function patientsWith(medplum: LocalMedplum, value: string): WithId<Patient>[] {
  return medplum
    .allResources<Patient>('Patient')
    .filter((p) => p.identifier?.some((i) => i.system === PATIENT_SYSTEM && i.value === value));
}

function expectRefused(result: RowResult | undefined, id: string): void {
  expect(result?.state, JSON.stringify(id)).toBe('failed');
  expect(result?.errors?.[0]?.column).toBe('patient_id');
  expect(result?.errors?.[0]?.message).toMatch(/^patient_id (is required|must not contain )/);
}

/** How many generated ids were tried and accepted, over all runs. */
const stats = { ids: 0, accepted: 0 };

describe('source ids never reach another record', () => {
  it('imported as patients and used as encounter references, generated ids change nothing but their own resources', async () => {
    await fc.assert(
      fc.asyncProperty(distinctIds(2, 8), async (ids) => {
        stats.ids += ids.length;
        stats.accepted += ids.filter(accepted).length;
        const imported = ids.slice(0, Math.ceil(ids.length / 2));
        const dangling = ids.slice(imported.length);
        const medplum = createLocalMedplum();

        // Neighbours: stored before the import, under other ids.
        for (const value of neighbourIds(ids)) {
          await medplum.createResource<Patient>({
            resourceType: 'Patient',
            identifier: [{ system: PATIENT_SYSTEM, value }],
            name: [{ family: 'Neighbour' }],
          });
        }
        const before = new Map(medplum.allResources<Patient>('Patient').map((p) => [p.id, JSON.stringify(p)]));

        const patientRows = await importRows(medplum, 'patients.csv', [
          'patient_id,first_name,last_name,birth_date,gender',
          ...imported.map((id) => `${quoted(id)},Given,Family,,`),
        ]);
        imported.forEach((id, i) => {
          const result = patientRows.get(i + 2);
          if (!accepted(id)) {
            expectRefused(result, id);
            return;
          }
          expect(result?.state, JSON.stringify(id)).toBe('created');
          const own = patientsWith(medplum, id.trim());
          expect(own, JSON.stringify(id)).toHaveLength(1);
          expect(before.has(own[0].id)).toBe(false);
          expect(own[0].name).toEqual([{ given: ['Given'], family: 'Family' }]);
        });

        const encounterRows = await importRows(medplum, 'encounters.csv', [
          'encounter_id,patient_id,date,type',
          ...ids.map((id, i) => `E${i},${quoted(id)},2023-05-01,checkup`),
        ]);
        const encounters = medplum.allResources<Encounter>('Encounter');
        ids.forEach((id, i) => {
          const result = encounterRows.get(i + 2);
          if (!accepted(id)) {
            expectRefused(result, id);
            return;
          }
          const encounter = encounters.find((e) => e.identifier?.[0]?.value === `E${i}`);
          if (dangling.includes(id)) {
            // No such patient: the row fails on its reference, and never links to a neighbour.
            expect(result?.state, JSON.stringify(id)).toBe('failed');
            expect(result?.errors?.[0]?.column).toBe('patient_id');
            expect(encounter).toBeUndefined();
            return;
          }
          expect(result?.state, JSON.stringify(id)).toBe('created');
          expect(encounter?.subject?.reference).toBe(`Patient/${patientsWith(medplum, id.trim())[0].id}`);
        });

        // Every resource stored before is exactly as it was: same content, same version.
        for (const [id, json] of before) {
          const now = medplum.allResources<Patient>('Patient').find((p) => p.id === id);
          expect(JSON.stringify(now)).toBe(json);
        }
      }),
      { seed: 424242, numRuns: 300, endOnFailure: true }
    );
    // The generator reaches both sides of the rule.
    expect(stats.accepted).toBeGreaterThan(200);
    expect(stats.ids - stats.accepted).toBeGreaterThan(200);
  }, 60_000);
});
