/**
 * Reading CSV cell text as FHIR decimal, integer and boolean values. The text is already trimmed.
 * Problems name the rule and never quote the cell: cells hold patient data.
 */

export type IntegerKind = 'integer' | 'positiveInt' | 'unsignedInt';

type Read<T> = { value: T } | { problem: string };

/**
 * Plain decimal notation: an optional sign, digits, and a fraction after a dot. A missing
 * integer part (`.5`, as Oracle and some spreadsheets write it) is accepted; a dot with nothing
 * after it (`5.`) is not, since it looks cut off. No exponents, thousands separators, NaN,
 * Infinity or hex: `1,000` could be one thousand or one, and FHIR decimals are read as written.
 */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d+)?|\.\d+)$/;

/** Doubles keep any decimal of up to 15 significant digits exactly (through JSON and back). */
const MAX_SIGNIFICANT_DIGITS = 15;

/** Below this, doubles lose digits (subnormal numbers). */
const SMALLEST_NORMAL = 2.2250738585072014e-308;

// Shared by every cell, so frozen: a caller that edits a problem fails loudly instead of changing the next one.
const NOT_A_DECIMAL = Object.freeze({ problem: 'must be a decimal number such as 12.5' });
const TOO_PRECISE = Object.freeze({
  problem: `has more than ${MAX_SIGNIFICANT_DIGITS} significant digits (it would not be stored exactly)`,
});
const DECIMAL_OUT_OF_RANGE = Object.freeze({ problem: 'is too large or too small a number to be stored exactly' });

export function readDecimal(text: string): Read<number> {
  if (!DECIMAL.test(text)) {
    return NOT_A_DECIMAL;
  }
  const significant = significantDigits(text);
  if (significant > MAX_SIGNIFICANT_DIGITS) {
    return TOO_PRECISE;
  }
  if (significant === 0) {
    return { value: 0 }; // also '-0': JSON has no negative zero
  }
  const value = Number(text);
  if (!Number.isFinite(value) || Math.abs(value) < SMALLEST_NORMAL) {
    return DECIMAL_OUT_OF_RANGE;
  }
  return { value };
}

/** Digits from the first non-zero one to the last: leading and trailing zeros do not change the value's precision. */
function significantDigits(text: string): number {
  let first = -1;
  let last = -1;
  let count = 0;
  let countAtLast = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) {
      continue; // sign or dot
    }
    if (first >= 0) {
      count++;
    }
    if (code !== 48) {
      if (first < 0) {
        first = i;
        count = 1;
      }
      last = i;
      countAtLast = count;
    }
  }
  return last < 0 ? 0 : countAtLast;
}

const INTEGER = /^[+-]?\d+$/;

const INTEGER_RANGES: Readonly<Record<IntegerKind, { min: number; max: number; problem: string }>> = {
  integer: { min: -2147483648, max: 2147483647, problem: 'must be a whole number from -2147483648 to 2147483647' },
  positiveInt: { min: 1, max: 2147483647, problem: 'must be a whole number from 1 to 2147483647' },
  unsignedInt: { min: 0, max: 2147483647, problem: 'must be a whole number from 0 to 2147483647' },
};

/** A whole number in the FHIR type's range (32-bit signed); a sign and leading zeros are allowed. */
export function readInteger(text: string, kind: IntegerKind): Read<number> {
  const range = INTEGER_RANGES[kind];
  if (!INTEGER.test(text)) {
    return { problem: range.problem };
  }
  // Huge digit strings become large doubles or Infinity: the range check catches both.
  const value = Number(text);
  if (value < range.min || value > range.max) {
    return { problem: range.problem };
  }
  return { value: value === 0 ? 0 : value };
}

export const DEFAULT_TRUE_VALUES: readonly string[] = ['true', 'yes', 'y', '1'];
export const DEFAULT_FALSE_VALUES: readonly string[] = ['false', 'no', 'n', '0'];

/** The lists as case-folded sets, made once per list (lists come from a mapping and are reused per cell). */
interface BooleanWords {
  readonly trueWords: ReadonlySet<string>;
  readonly falseWords: ReadonlySet<string>;
  readonly problem: string;
}

const wordsCache = new WeakMap<readonly string[], WeakMap<readonly string[], BooleanWords>>();

function booleanWords(trueValues: readonly string[], falseValues: readonly string[]): BooleanWords {
  let byFalse = wordsCache.get(trueValues);
  if (!byFalse) {
    byFalse = new WeakMap();
    wordsCache.set(trueValues, byFalse);
  }
  let words = byFalse.get(falseValues);
  if (!words) {
    words = {
      trueWords: new Set(trueValues.map((word) => word.toLowerCase())),
      falseWords: new Set(falseValues.map((word) => word.toLowerCase())),
      problem: `must be one of ${trueValues.join(', ')} / ${falseValues.join(', ')}`,
    };
    byFalse.set(falseValues, words);
  }
  return words;
}

/** One of the true or false words, case-insensitively. A word in both lists reads as true. */
export function readBoolean(
  text: string,
  trueValues: readonly string[] = DEFAULT_TRUE_VALUES,
  falseValues: readonly string[] = DEFAULT_FALSE_VALUES
): Read<boolean> {
  const words = booleanWords(trueValues, falseValues);
  const folded = text.toLowerCase();
  if (words.trueWords.has(folded)) {
    return { value: true };
  }
  if (words.falseWords.has(folded)) {
    return { value: false };
  }
  return { problem: words.problem };
}
