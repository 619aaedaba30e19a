import { mulberry32 } from '../../src/lib/local-medplum/faults';

export { mulberry32 };

/** Seeded test and benchmark data: no patient data here is real. */
const GIVEN = ['Ana', 'Ben', 'Chloé', 'Dmitri', 'Eun-ji', 'Farah', 'Goran', 'Hiroshi', 'Ines', 'Jamal', '李', 'Zoë'];
const FAMILY = ['Nguyen', 'Smith', 'García', 'Müller', 'Okafor', 'Kowalski', 'Haddad', 'Ivanova', 'Tanaka', 'O\'Brien'];
const TYPES = ['checkup', 'emergency', 'inpatient', 'virtual', 'home'];

const pick = <T>(random: () => number, list: readonly T[]): T => list[Math.floor(random() * list.length)];
const day = (random: () => number, from: number, to: number): string =>
  new Date(Date.UTC(from, 0, 1) + Math.floor(random() * (to - from) * 365) * 86_400_000).toISOString().slice(0, 10);

export function patientsCsv(count: number, seed = 1, prefix = 'G'): string {
  const random = mulberry32(seed);
  const lines = ['patient_id,first_name,last_name,birth_date,gender'];
  for (let i = 1; i <= count; i++) {
    lines.push(`${prefix}${String(i).padStart(7, '0')},${pick(random, GIVEN)},"${pick(random, FAMILY)}",${day(random, 1930, 2020)},${pick(random, ['M', 'F', 'O', 'U'])}`);
  }
  return lines.join('\n') + '\n';
}

/** Encounters for the given patient ids; about two in three carry a note. */
export function encountersCsv(count: number, patientIds: readonly string[], seed = 2, prefix = 'GE'): string {
  const random = mulberry32(seed);
  const lines = ['encounter_id,patient_id,date,type,note'];
  for (let i = 1; i <= count; i++) {
    const note = random() < 0.66 ? `"Visit ${i}: stable, plan reviewed, follow up in ${1 + Math.floor(random() * 12)} months."` : '';
    lines.push(`${prefix}${String(i).padStart(7, '0')},${pick(random, patientIds)},${day(random, 2015, 2024)},${pick(random, TYPES)},${note}`);
  }
  return lines.join('\n') + '\n';
}
