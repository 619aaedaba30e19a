/**
 * Values that go into searches, conditional URLs and conditional references.
 *
 * Medplum splits a request URL on every `?` (parseSearchRequest), decodes the query with
 * URLSearchParams, splits each value on unescaped commas (OR) and a token at its first `|`
 * (system|value). So a value is first FHIR-escaped (`\` `,` `$` get a backslash; see
 * https://hl7.org/fhir/r4/search.html#escaping) and then, in URLs we write ourselves,
 * percent-encoded: no input can add a parameter, an OR branch or a second URL to a search.
 *
 * A `|` inside a value cannot be escaped portably (the server splits a token at the first bar,
 * @medplum/core's in-memory matcher at every bar), so values with one are refused here; row
 * validation refuses them earlier with the column named.
 */

/** Characters with a meaning inside a FHIR search value, escaped with a backslash. */
const FHIR_SPECIAL = /[\\,$]/g;

export class UnsafeSearchValueError extends Error {
  constructor(what: string) {
    super(`${what} contains '|', which cannot be used in a FHIR token search`);
    this.name = 'UnsafeSearchValueError';
  }
}

/** A value FHIR-escaped, for search parameters that MedplumClient percent-encodes itself. */
export function fhirEscape(value: string): string {
  return value.replace(FHIR_SPECIAL, '\\$&');
}

/** A token `system|value`, FHIR-escaped, for search parameter objects (MedplumClient encodes the URL). */
export function tokenParam(system: string, value: string): string {
  if (system.includes('|')) {
    throw new UnsafeSearchValueError('an identifier system');
  }
  if (value.includes('|')) {
    throw new UnsafeSearchValueError('an identifier value');
  }
  return `${fhirEscape(system)}|${fhirEscape(value)}`;
}

/** A token `system|value`, FHIR-escaped and percent-encoded, for URLs written by hand. */
export function tokenQuery(system: string, value: string): string {
  const [escapedSystem, escapedValue] = tokenParam(system, value).split(/(?<!\\)\|/);
  return `${encodeURIComponent(escapedSystem)}|${encodeURIComponent(escapedValue)}`;
}

/** `Type?identifier=system|value`: a conditional URL or conditional reference, fully escaped. */
export function identifierQuery(resourceType: string, system: string, value: string): string {
  return `${resourceType}?identifier=${tokenQuery(system, value)}`;
}

/** `Type?identifier=system|value`, as identifierQuery writes conditional references. */
const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]+)\?identifier=([^|]*)\|(.*)$/;

/** A conditional reference decoded (type, identifier system and value), or undefined for any other reference. */
export function parseConditionalReference(reference: string): { type: string; system: string; value: string } | undefined {
  const match = CONDITIONAL_REFERENCE.exec(reference);
  return match ? { type: match[1], system: decodeSearchValue(match[2]), value: decodeSearchValue(match[3]) } : undefined;
}

/** A value as written here, back to the text (percent-decoded, FHIR-unescaped). */
export function decodeSearchValue(raw: string): string {
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // not percent-encoded: keep it as it is
  }
  return decoded.replace(/\\(.)/g, '$1');
}
