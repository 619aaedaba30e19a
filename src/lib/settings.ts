import type { ProjectSetting } from '@medplum/fhirtypes';
import { refusedCharacters } from './tables/identifier-chars';

/**
 * How source data maps onto FHIR identities and how it is written. Everything here can be set
 * per call (bot input / CLI flags) or per project (bot secrets), so that every resource written
 * keeps a stable identifier and re-imports update rather than duplicate.
 */
export interface ImportSettings {
  /**
   * Base URI of the legacy system. Identifier systems are derived from it:
   * `${identifierBase}/patient-id`, `${identifierBase}/encounter-id`, ... Change it only before the
   * first import: resources are matched on these systems.
   */
  identifierBase: string;
  /** Rows (bundle entries) per batch request. */
  batchSize: number;
  /** Upper bound on one request body; the server refuses JSON bodies over 1 MB. */
  maxRequestBytes: number;
  /** Legacy encounter type -> FHIR Encounter.class (v3 ActEncounterCode). Keys are matched case-insensitively. */
  encounterClassMap: Record<string, EncounterClassCode>;
}

/** The default identifier base; real migrations should set their own (bot secret IDENTIFIER_BASE). */
export const DEFAULT_IDENTIFIER_BASE = 'https://legacy-ehr.example.org/fhir';

/**
 * Chosen by measurement (see bench/README or README "Benchmark"): 500 conditional PUTs per
 * request keeps a Patient batch near 250 KB, well under the 1 MB body limit, and is where the
 * per-request overhead stops mattering.
 */
export const DEFAULT_BATCH_SIZE = 500;

/** Safety margin under the server's 1 MB `maxJsonSize`. */
export const DEFAULT_MAX_REQUEST_BYTES = 900_000;

/**
 * The encounter classes Encounter.class may hold: the HL7 v3 ActEncounterCode value set
 * (http://terminology.hl7.org/ValueSet/v3-ActEncounterCode), codes of the v3 ActCode system, with
 * their displays.
 */
export const ENCOUNTER_CLASS_DISPLAY = {
  AMB: 'ambulatory',
  EMER: 'emergency',
  FLD: 'field',
  HH: 'home health',
  IMP: 'inpatient encounter',
  ACUTE: 'inpatient acute',
  NONAC: 'inpatient non-acute',
  OBSENC: 'observation encounter',
  PRENC: 'pre-admission',
  SS: 'short stay',
  VR: 'virtual',
} as const satisfies Record<string, string>;

export type EncounterClassCode = keyof typeof ENCOUNTER_CLASS_DISPLAY;

const ENCOUNTER_CLASS_CODES = Object.keys(ENCOUNTER_CLASS_DISPLAY) as EncounterClassCode[];

/**
 * Default encounter type -> class table (http://terminology.hl7.org/CodeSystem/v3-ActCode).
 * Override it with the ENCOUNTER_CLASS_MAP secret or the `encounterClassMap` input (JSON object).
 */
export const DEFAULT_ENCOUNTER_CLASS_MAP: Record<string, EncounterClassCode> = {
  checkup: 'AMB',
  'follow-up': 'AMB',
  followup: 'AMB',
  office: 'AMB',
  outpatient: 'AMB',
  ambulatory: 'AMB',
  consultation: 'AMB',
  emergency: 'EMER',
  er: 'EMER',
  inpatient: 'IMP',
  admission: 'IMP',
  acute: 'ACUTE',
  observation: 'OBSENC',
  'pre-admission': 'PRENC',
  'short-stay': 'SS',
  home: 'HH',
  'home-health': 'HH',
  virtual: 'VR',
  telehealth: 'VR',
  telemedicine: 'VR',
  field: 'FLD',
};

export function defaultSettings(): ImportSettings {
  return {
    identifierBase: DEFAULT_IDENTIFIER_BASE,
    batchSize: DEFAULT_BATCH_SIZE,
    maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
    encounterClassMap: { ...DEFAULT_ENCOUNTER_CLASS_MAP },
  };
}

/** Settings overrides as they arrive from bot input or the command line. */
export interface SettingsInput {
  identifierBase?: unknown;
  batchSize?: unknown;
  maxRequestBytes?: unknown;
  encounterClassMap?: unknown;
}

/**
 * Resolves settings: defaults, then bot secrets (IDENTIFIER_BASE, BATCH_SIZE, ENCOUNTER_CLASS_MAP),
 * then explicit input. Invalid values are reported, naming the setting and the rule (never
 * echoing the value), never silently replaced.
 */
export function resolveSettings(input: SettingsInput = {}, secrets: Record<string, ProjectSetting> = {}): ImportSettings {
  const settings = defaultSettings();
  const fromSecret = (name: string): string | undefined => {
    const secret = secrets[name];
    return secret?.valueString ?? (secret?.valueInteger !== undefined ? String(secret.valueInteger) : undefined);
  };

  const base = pick(input.identifierBase, 'identifierBase', fromSecret('IDENTIFIER_BASE'), 'the IDENTIFIER_BASE secret');
  if (base) {
    settings.identifierBase = checkIdentifierBase(base.value, base.name);
  }

  const batchSize = input.batchSize ?? fromSecret('BATCH_SIZE');
  if (batchSize !== undefined) {
    const n = Number(batchSize);
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      throw new Error('batchSize must be a whole number from 1 to 1000');
    }
    settings.batchSize = n;
  }

  if (input.maxRequestBytes !== undefined) {
    const n = Number(input.maxRequestBytes);
    if (!Number.isInteger(n) || n < 10_000) {
      throw new Error('maxRequestBytes must be a whole number of at least 10000');
    }
    settings.maxRequestBytes = n;
  }

  const classMap = pick(input.encounterClassMap, 'encounterClassMap', fromSecret('ENCOUNTER_CLASS_MAP'), 'the ENCOUNTER_CLASS_MAP secret');
  if (classMap) {
    Object.assign(settings.encounterClassMap, checkEncounterClassMap(classMap.value, classMap.name));
  }
  return settings;
}

/** The input's value when given, else the secret's, with the name to use in messages. */
function pick(
  input: unknown,
  inputName: string,
  secret: string | undefined,
  secretName: string
): { value: unknown; name: string } | undefined {
  if (input !== undefined) {
    return { value: input, name: inputName };
  }
  return secret === undefined ? undefined : { value: secret, name: secretName };
}

/**
 * identifierBase becomes the start of every identifier system, which goes into searches
 * (`identifier=system|value`) and conditional URLs: it must be an absolute URI, and nothing in it
 * may end the system early (`|`), split a search (`,` `?` `#`) or hide (whitespace, control or
 * invisible characters).
 */
function checkIdentifierBase(value: unknown, name: string): string {
  const rule = `${name} must be an absolute URI (http://, https:// or urn:) without spaces, control or invisible characters, ',', '|', '?' or '#'`;
  if (typeof value !== 'string' || !/^(https?:\/\/[^/]|urn:[^:])/i.test(value) || /[,?#]/.test(value) || refusedCharacters(value)) {
    throw new Error(rule);
  }
  return value.replace(/\/+$/, '');
}

/** A type -> class map from JSON text or an object; every class an ActEncounterCode (any case). */
function checkEncounterClassMap(value: unknown, name: string): Record<string, EncounterClassCode> {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new Error(`${name} must be a JSON object of type -> encounter class code`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${name} must be an object of type -> encounter class code`);
  }
  const map: Record<string, EncounterClassCode> = {};
  for (const [type, code] of Object.entries(parsed)) {
    const known = typeof code === 'string' ? ENCOUNTER_CLASS_CODES.find((c) => c === code.trim().toUpperCase()) : undefined;
    if (!known) {
      throw new Error(
        `${name}: the class for type ${JSON.stringify(type)} must be an HL7 v3 ActCode encounter code: one of ${ENCOUNTER_CLASS_CODES.join(', ')}`
      );
    }
    map[type.trim().toLowerCase()] = known;
  }
  return map;
}

/** The identifier system for one kind of source id, e.g. identifierSystem(settings, 'patient-id'). */
export function identifierSystem(settings: ImportSettings, kind: string): string {
  return `${settings.identifierBase}/${kind}`;
}
