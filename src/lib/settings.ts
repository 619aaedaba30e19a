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
  /**
   * An element a mapping writes that was changed in Medplum since the import last wrote it:
   * `keep` it (the row is reported as a conflict, with the element paths) or `overwrite` it.
   */
  onConflict: OnConflict;
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

export type OnConflict = 'keep' | 'overwrite';

export function defaultSettings(): ImportSettings {
  return {
    onConflict: 'keep',
    identifierBase: DEFAULT_IDENTIFIER_BASE,
    batchSize: DEFAULT_BATCH_SIZE,
    maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  };
}

/** Settings overrides as they arrive from bot input or the command line. */
export interface SettingsInput {
  identifierBase?: unknown;
  batchSize?: unknown;
  maxRequestBytes?: unknown;
  onConflict?: unknown;
}

/**
 * Resolves settings: defaults, then bot secrets (IDENTIFIER_BASE, BATCH_SIZE, ON_CONFLICT),
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
  const onConflict = pick(input.onConflict, 'onConflict', fromSecret('ON_CONFLICT'), 'the ON_CONFLICT secret');
  if (onConflict) {
    if (onConflict.value !== 'keep' && onConflict.value !== 'overwrite') {
      throw new Error(`${onConflict.name} must be "keep" or "overwrite"`);
    }
    settings.onConflict = onConflict.value;
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

/** The identifier system for one kind of source id, e.g. identifierSystem(settings, 'patient-id'). */
export function identifierSystem(settings: ImportSettings, kind: string): string {
  return `${settings.identifierBase}/${kind}`;
}
