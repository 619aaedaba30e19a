/**
 * Benchmark input shaped like a Synthea CSV export (Synthea 3.x layout: the columns, UUIDs, ISO
 * date-times with Z, SNOMED CT / LOINC / RxNorm codes, UCUM units, numeric and text observation
 * values, simulation metrics without an encounter, quoted descriptions with commas), generated from
 * a seed. Nothing is taken from a real export: codes and descriptions are a small catalogue of
 * common ones, values are random.
 */
import { mulberry32 } from '../test/helpers/generate';

type Random = () => number;

const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)];

/** A UUID-shaped id from the seeded generator (Synthea writes version-less UUIDs too). */
function uuid(random: Random): string {
  let hex = '';
  for (let i = 0; i < 32; i++) {
    hex += Math.floor(random() * 16).toString(16);
  }
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const FROM = Date.UTC(2000, 0, 1);
const SPAN = 24 * 365 * 86_400_000;

function instant(random: Random): number {
  return FROM + Math.floor(random() * SPAN / 1000) * 1000;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** A CSV cell: quoted when it holds a comma or a quote. */
function cell(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Patients and encounters the clinical rows refer to. */
class Population {
  readonly patients: string[];
  readonly encounters: { id: string; patient: string; start: number }[] = [];

  constructor(random: Random, patients = 1000, encountersPerPatient = 20) {
    this.patients = Array.from({ length: patients }, () => uuid(random));
    for (const patient of this.patients) {
      for (let i = 0; i < encountersPerPatient; i++) {
        this.encounters.push({ id: uuid(random), patient, start: instant(random) });
      }
    }
  }
}

interface NumericCode {
  code: string;
  description: string;
  unit: string;
  category: string;
  min: number;
  max: number;
  digits: number;
}

const NUMERIC: readonly NumericCode[] = [
  { code: '8302-2', description: 'Body Height', unit: 'cm', category: 'vital-signs', min: 50, max: 200, digits: 1 },
  { code: '29463-7', description: 'Body Weight', unit: 'kg', category: 'vital-signs', min: 3, max: 140, digits: 1 },
  { code: '39156-5', description: 'Body mass index (BMI) [Ratio]', unit: 'kg/m2', category: 'vital-signs', min: 14, max: 45, digits: 2 },
  { code: '8480-6', description: 'Systolic Blood Pressure', unit: 'mm[Hg]', category: 'vital-signs', min: 90, max: 180, digits: 0 },
  { code: '8462-4', description: 'Diastolic Blood Pressure', unit: 'mm[Hg]', category: 'vital-signs', min: 55, max: 110, digits: 0 },
  { code: '8867-4', description: 'Heart rate', unit: '/min', category: 'vital-signs', min: 50, max: 130, digits: 0 },
  { code: '9279-1', description: 'Respiratory rate', unit: '/min', category: 'vital-signs', min: 10, max: 30, digits: 0 },
  { code: '8310-5', description: 'Body temperature', unit: 'Cel', category: 'vital-signs', min: 35.5, max: 39.5, digits: 1 },
  { code: '72514-3', description: 'Pain severity - 0-10 verbal numeric rating [Score] - Reported', unit: '{score}', category: 'vital-signs', min: 0, max: 10, digits: 0 },
  { code: '2339-0', description: 'Glucose [Mass/volume] in Blood', unit: 'mg/dL', category: 'laboratory', min: 60, max: 250, digits: 1 },
  { code: '4548-4', description: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', category: 'laboratory', min: 4, max: 10, digits: 1 },
  { code: '6690-2', description: 'Leukocytes [#/volume] in Blood by Automated count', unit: '10*3/uL', category: 'laboratory', min: 3, max: 12, digits: 1 },
  { code: '2093-3', description: 'Cholesterol [Mass/volume] in Serum or Plasma', unit: 'mg/dL', category: 'laboratory', min: 120, max: 280, digits: 1 },
];

const TEXT: readonly { code: string; description: string; category: string; values: readonly string[] }[] = [
  { code: '72166-2', description: 'Tobacco smoking status', category: 'survey', values: ['Never smoker', 'Former smoker', 'Current every day smoker'] },
  {
    code: '93025-5',
    description: "Protocol for Responding to and Assessing Patients' Assets, Risks, and Experiences [PRAPARE]",
    category: 'survey',
    values: ['Yes', 'No'],
  },
  { code: '56051-6', description: 'Do you feel physically and emotionally safe where you currently live [PRAPARE]', category: 'survey', values: ['Yes', 'No'] },
  { code: '71802-3', description: 'Housing status', category: 'survey', values: ['I have housing', 'I do not have housing'] },
  { code: '54899-0', description: 'Preferred language', category: 'survey', values: ['English', 'Spanish'] },
  { code: '5778-6', description: 'Color of Urine', category: 'laboratory', values: ['Yellow', 'Straw', 'Amber'] },
];

const METRICS = [
  ['QALY', 'Quality adjusted life years', 'a'],
  ['DALY', 'Disability adjusted life years', 'a'],
  ['QOLS', 'Quality of life scale', '{score}'],
] as const;

export const OBSERVATIONS_HEADER = 'DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE';

/**
 * observations.csv: about 60% numeric values with UCUM units, 30% text answers (smoking status
 * among them), 3% income answers written as text with the unit /a, and 7% simulation metrics
 * (QALY, DALY, QOLS: no encounter, no category), which the profile skips.
 */
export function syntheaObservations(count: number, seed = 1): { text: string; skipped: number } {
  const random = mulberry32(seed);
  const population = new Population(random);
  const lines = [OBSERVATIONS_HEADER];
  let skipped = 0;
  for (let i = 0; i < count; i++) {
    const encounter = pick(random, population.encounters);
    const date = iso(encounter.start + Math.floor(random() * 3600) * 1000);
    const roll = random();
    if (roll < 0.07) {
      const [code, description, unit] = pick(random, METRICS);
      lines.push([date, encounter.patient, '', '', code, cell(description), (random() * 60).toFixed(1), unit, 'numeric'].join(','));
      skipped++;
    } else if (roll < 0.1) {
      lines.push([date, encounter.patient, encounter.id, 'survey', '63586-2', cell('Total income in past year'), String(Math.floor(10_000 + random() * 90_000)), '/a', 'text'].join(','));
    } else if (roll < 0.4) {
      const t = pick(random, TEXT);
      lines.push([date, encounter.patient, encounter.id, t.category, t.code, cell(t.description), cell(pick(random, t.values)), '', 'text'].join(','));
    } else {
      const n = pick(random, NUMERIC);
      const value = (n.min + random() * (n.max - n.min)).toFixed(n.digits);
      lines.push([date, encounter.patient, encounter.id, n.category, n.code, cell(n.description), value, n.unit, 'numeric'].join(','));
    }
  }
  return { text: lines.join('\n') + '\n', skipped };
}

const ENCOUNTER_TYPES: readonly [string, string, string][] = [
  ['wellness', '162673000', 'General examination of patient (procedure)'],
  ['wellness', '410620009', 'Well child visit (procedure)'],
  ['ambulatory', '185345009', 'Encounter for symptom (procedure)'],
  ['ambulatory', '185349003', 'Encounter for check up (procedure)'],
  ['outpatient', '185347001', 'Encounter for problem (procedure)'],
  ['urgentcare', '702927004', 'Urgent care clinic (environment)'],
  ['emergency', '50849002', 'Emergency room admission (procedure)'],
  ['inpatient', '183452005', 'Emergency hospital admission (procedure)'],
];

const REASONS: readonly [string, string][] = [
  ['195662009', 'Acute viral pharyngitis (disorder)'],
  ['444814009', 'Viral sinusitis (disorder)'],
  ['10509002', 'Acute bronchitis (disorder)'],
  ['72892002', 'Normal pregnancy (finding)'],
  ['38341003', 'Hypertension (disorder)'],
];

export const ENCOUNTERS_HEADER =
  'Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION';

/** encounters.csv: every row has a provider and an organization; about a quarter a reason. */
export function syntheaEncounters(count: number, seed = 2): { text: string; skipped: number } {
  const random = mulberry32(seed);
  const population = new Population(random, 500, 1);
  const organizations = Array.from({ length: 50 }, () => uuid(random));
  const providers = Array.from({ length: 200 }, () => uuid(random));
  const payers = Array.from({ length: 10 }, () => uuid(random));
  const lines = [ENCOUNTERS_HEADER];
  for (let i = 0; i < count; i++) {
    const start = instant(random);
    const [encounterClass, code, description] = pick(random, ENCOUNTER_TYPES);
    const [reasonCode, reasonDescription] = random() < 0.25 ? pick(random, REASONS) : ['', ''];
    const cost = (50 + random() * 200).toFixed(2);
    lines.push(
      [
        uuid(random),
        iso(start),
        iso(start + (15 + Math.floor(random() * 60)) * 60_000),
        pick(random, population.patients),
        pick(random, organizations),
        pick(random, providers),
        pick(random, payers),
        encounterClass,
        code,
        cell(description),
        cost,
        (Number(cost) * 3).toFixed(2),
        '0.00',
        reasonCode,
        cell(reasonDescription),
      ].join(',')
    );
  }
  return { text: lines.join('\n') + '\n', skipped: 0 };
}

const CONDITIONS: readonly [string, string][] = [
  ['444814009', 'Viral sinusitis (disorder)'],
  ['195662009', 'Acute viral pharyngitis (disorder)'],
  ['10509002', 'Acute bronchitis (disorder)'],
  ['38341003', 'Hypertension (disorder)'],
  ['15777000', 'Prediabetes (finding)'],
  ['40055000', 'Chronic sinusitis (disorder)'],
  ['162864005', 'Body mass index 30+ - obesity (finding)'],
];

export const CONDITIONS_HEADER = 'START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION';

/** conditions.csv: dates without times; about two in three resolved (a STOP date). */
export function syntheaConditions(count: number, seed = 3): { text: string; skipped: number } {
  const random = mulberry32(seed);
  const population = new Population(random);
  const lines = [CONDITIONS_HEADER];
  for (let i = 0; i < count; i++) {
    const encounter = population.encounters[i % population.encounters.length];
    const [code, description] = CONDITIONS[Math.floor(i / population.encounters.length) % CONDITIONS.length];
    const stop = random() < 0.66 ? isoDay(encounter.start + Math.floor(random() * 60) * 86_400_000) : '';
    lines.push([isoDay(encounter.start), stop, encounter.patient, encounter.id, code, cell(description)].join(','));
  }
  return { text: lines.join('\n') + '\n', skipped: 0 };
}

const MEDICATIONS: readonly [string, string][] = [
  ['313782', 'Acetaminophen 325 MG Oral Tablet'],
  ['834061', 'Penicillin V Potassium 250 MG Oral Tablet'],
  ['310965', 'Ibuprofen 200 MG Oral Tablet'],
  ['849574', 'Naproxen sodium 220 MG Oral Tablet'],
  ['314231', 'Simvastatin 10 MG Oral Tablet'],
  ['1049221', 'Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet'],
];

export const MEDICATIONS_HEADER =
  'START,STOP,PATIENT,PAYER,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,PAYER_COVERAGE,DISPENSES,TOTALCOST,REASONCODE,REASONDESCRIPTION';

/** medications.csv: most rows stopped (a STOP date-time), most with a reason. */
export function syntheaMedications(count: number, seed = 4): { text: string; skipped: number } {
  const random = mulberry32(seed);
  const population = new Population(random);
  const payers = Array.from({ length: 10 }, () => uuid(random));
  const lines = [MEDICATIONS_HEADER];
  for (let i = 0; i < count; i++) {
    const encounter = population.encounters[i % population.encounters.length];
    const [code, description] = MEDICATIONS[Math.floor(i / population.encounters.length) % MEDICATIONS.length];
    const stop = random() < 0.9 ? iso(encounter.start + Math.floor(random() * 90) * 86_400_000) : '';
    const [reasonCode, reasonDescription] = random() < 0.85 ? pick(random, REASONS) : ['', ''];
    const cost = (1 + random() * 50).toFixed(2);
    const dispenses = String(1 + Math.floor(random() * 12));
    lines.push(
      [
        iso(encounter.start),
        stop,
        encounter.patient,
        pick(random, payers),
        encounter.id,
        code,
        cell(description),
        cost,
        '0.00',
        dispenses,
        (Number(cost) * Number(dispenses)).toFixed(2),
        reasonCode,
        cell(reasonDescription),
      ].join(',')
    );
  }
  return { text: lines.join('\n') + '\n', skipped: 0 };
}
