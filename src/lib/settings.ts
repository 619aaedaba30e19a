import type { ProjectSetting } from '@medplum/fhirtypes';

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
  /** Legacy encounter type -> FHIR Encounter.class (v3 ActCode). Keys are matched case-insensitively. */
  encounterClassMap: Record<string, string>;
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
 * Default encounter type -> class table (http://terminology.hl7.org/CodeSystem/v3-ActCode).
 * Override it with the ENCOUNTER_CLASS_MAP secret or the `encounterClassMap` input (JSON object).
 */
export const DEFAULT_ENCOUNTER_CLASS_MAP: Record<string, string> = {
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
 * then explicit input. Invalid values are reported, never silently replaced.
 */
export function resolveSettings(input: SettingsInput = {}, secrets: Record<string, ProjectSetting> = {}): ImportSettings {
  const settings = defaultSettings();
  const fromSecret = (name: string): string | undefined => {
    const secret = secrets[name];
    return secret?.valueString ?? (secret?.valueInteger !== undefined ? String(secret.valueInteger) : undefined);
  };

  const base = input.identifierBase ?? fromSecret('IDENTIFIER_BASE');
  if (base !== undefined) {
    if (typeof base !== 'string' || !/^(https?:\/\/|urn:)\S+$/.test(base)) {
      throw new Error('identifierBase must be an absolute URI (http(s):// or urn:) without spaces');
    }
    settings.identifierBase = base.replace(/\/+$/, '');
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

  let classMap = input.encounterClassMap ?? fromSecret('ENCOUNTER_CLASS_MAP');
  if (classMap !== undefined) {
    if (typeof classMap === 'string') {
      try {
        classMap = JSON.parse(classMap);
      } catch {
        throw new Error('ENCOUNTER_CLASS_MAP must be a JSON object of type -> ActCode');
      }
    }
    if (typeof classMap !== 'object' || classMap === null || Array.isArray(classMap)) {
      throw new Error('encounterClassMap must be an object of type -> ActCode');
    }
    for (const [type, code] of Object.entries(classMap)) {
      if (typeof code !== 'string' || !code) {
        throw new Error(`encounterClassMap: the class for '${type}' must be a non-empty code`);
      }
      settings.encounterClassMap[type.trim().toLowerCase()] = code;
    }
  }
  return settings;
}

/** The identifier system for one kind of source id, e.g. identifierSystem(settings, 'patient-id'). */
export function identifierSystem(settings: ImportSettings, kind: string): string {
  return `${settings.identifierBase}/${kind}`;
}
