/**
 * Which characters a source id (or an identifier system) may hold. Ids become FHIR identifier
 * values, are searched with `identifier=system|value` and appear in reports and logs, so:
 * - `|` is refused: a token search splits at it and no escaping works on every server;
 * - whitespace, control characters and invisible or formatting characters (zero-width, bidi
 *   marks and overrides, soft hyphen, byte-order mark, line separators) are refused: they make two
 *   ids that look the same differ, can reorder how a report reads, or break log lines;
 * - private-use and unassigned code points and lone surrogates are refused: they do not survive
 *   UTF-8 or mean nothing portable.
 * Everything else that is printable is allowed: `, $ \ ? & # % + ' = /` are escaped for searches
 * by src/lib/fhir/search-values.ts.
 */

/** One kind of refused character, with how a message names it. */
interface CharacterKind {
  pattern: RegExp;
  name: string;
}

const REFUSED_KINDS: readonly CharacterKind[] = [
  { pattern: /\|/, name: "'|'" },
  { pattern: /[^\P{White_Space}\u2028\u2029]/u, name: 'spaces or other whitespace' },
  { pattern: /\p{Cc}/u, name: 'control characters' },
  {
    pattern: /[\p{Cf}\u2028\u2029]/u,
    name: 'invisible or formatting characters (zero-width, bidi, soft hyphen, byte-order mark, line separators)',
  },
  { pattern: /[\p{Co}\p{Cn}]/u, name: 'private-use or unassigned characters' },
  { pattern: /\p{Cs}/u, name: 'broken characters (lone UTF-16 surrogates)' },
];

/** Any refused character: one test on the hot path, the kinds are worked out only on a hit. */
const ANY_REFUSED = /[|\p{White_Space}\p{C}]/u;

/** Characters that would not show, or would garble, where an id is printed. */
const NOT_VISIBLE = /[^\P{White_Space} ]|\p{C}/gu;

/**
 * The kinds of refused characters in a value ("'|' or control characters"), or undefined when it
 * has none. Names kinds only, never the value.
 */
export function refusedCharacters(value: string): string | undefined {
  if (!ANY_REFUSED.test(value)) {
    return undefined;
  }
  const kinds = REFUSED_KINDS.filter((kind) => kind.pattern.test(value)).map((kind) => kind.name);
  return kinds.length > 1 ? `${kinds.slice(0, -1).join(', ')} or ${kinds.at(-1)}` : kinds[0];
}

/**
 * An id as it may be shown in a report or log: characters that would not show (or would reorder
 * or break the text around them) become `<U+XXXX>`. Ids without them are returned as they are.
 */
export function visibleSourceId(value: string): string {
  if (!ANY_REFUSED.test(value)) {
    return value;
  }
  return value.replace(NOT_VISIBLE, (char) => `<U+${char.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}>`);
}
