// Properties of the value readers over generated input: wall-clock times in every zone Intl knows
// read back to the instant they came from, dates and decimals survive their round trips, every
// value read is valid FHIR, and no problem message depends on (so none can quote) the cell.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileDateFormats, isAfter } from '../../src/lib/values/date-time';
import type { DateKind, DateReader } from '../../src/lib/values/date-time';
import { readBoolean, readDecimal, readInteger } from '../../src/lib/values/numbers';
import type { IntegerKind } from '../../src/lib/values/numbers';

function reader(kind: DateKind, formats: readonly string[]): DateReader {
  const compiled = compileDateFormats(kind, formats);
  if ('error' in compiled) {
    throw new Error(compiled.error);
  }
  return compiled;
}

const ZONES = Intl.supportedValuesOf('timeZone');

/** Zones whose rules test the reader hardest: half- and quarter-hour offsets, half-hour DST, negative DST, skipped days. */
const AWKWARD_ZONES = [
  'UTC', 'America/New_York', 'Europe/Berlin', 'Europe/London', 'Europe/Dublin', 'Asia/Kolkata', 'Asia/Kathmandu',
  'America/St_Johns', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Pacific/Apia', 'Pacific/Kiritimati',
  'Africa/Casablanca', 'Antarctica/Troll', 'America/Sao_Paulo', 'Asia/Tehran', 'Pacific/Kwajalein', 'America/Sitka',
];

const FIRST_INSTANT = Date.UTC(1800, 0, 2);
const LAST_INSTANT = Date.UTC(2100, 11, 31);

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

const wallClockFormats = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time of an instant in a zone, as YYYY-MM-DD hh:mm:ss, from Intl (independent of the reader's cache). */
function wallClock(instant: number, zone: string): string {
  let format = wallClockFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    wallClockFormats.set(zone, format);
  }
  const part = Object.fromEntries(format.formatToParts(instant).map((p) => [p.type, Number(p.value)]));
  return `${pad(part.year, 4)}-${pad(part.month)}-${pad(part.day)} ${pad(part.hour)}:${pad(part.minute)}:${pad(part.second)}`;
}

// FHIR R4's value regexes (the date-time zone made required with a time, as FHIR's text says).
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const FHIR_DATE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`);
const TIME_AND_ZONE = 'T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';
const FHIR_DATE_TIME = new RegExp(
  `^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(${TIME_AND_ZONE})?)?)?$`
);
const FHIR_INSTANT = new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])${TIME_AND_ZONE}$`);
const FHIR_PATTERNS: Readonly<Record<DateKind, RegExp>> = { date: FHIR_DATE, dateTime: FHIR_DATE_TIME, instant: FHIR_INSTANT };

/** A wall-clock time's fields read as UTC, in ms. */
const asUtc = (text: string): number => Date.parse(`${text.replace(' ', 'T')}Z`);

/**
 * The instants that show a wall-clock time in a zone, earliest first, found with Intl alone:
 * the offsets in force within 36 hours (sampled every 3 hours: offsets last longer) each give
 * one candidate, kept when the zone's clock shows the time at it.
 */
function instantsShowing(text: string, zone: string): number[] {
  const fields = asUtc(text);
  const offsets = new Set<number>();
  for (let hours = -36; hours <= 36; hours += 3) {
    const sample = fields + hours * 3_600_000;
    offsets.add(asUtc(wallClock(sample, zone)) - sample);
  }
  return [...offsets]
    .map((offset) => fields - offset)
    .filter((candidate) => wallClock(candidate, zone) === text)
    .sort((a, b) => a - b);
}

/** The zone's first change of offset within 400 days after `start` (to the second), found with Intl alone. */
function nextChange(start: number, zone: string): number | undefined {
  const offset = (instant: number): number => asUtc(wallClock(instant, zone)) - instant;
  const initial = offset(start);
  for (let week = 1; week <= 58; week++) {
    const end = start + week * 7 * 86_400_000;
    if (offset(end) !== initial) {
      let [low, high] = [end - 7 * 86_400_000, end];
      while (high - low > 1000) {
        const middle = low + Math.floor((high - low) / 2000) * 1000;
        [low, high] = offset(middle) === initial ? [middle, high] : [low, middle];
      }
      return high;
    }
  }
  return undefined;
}

describe('zone-less date-times', () => {
  const localReader = reader('dateTime', ['YYYY-MM-DD hh:mm:ss']);
  const zone = fc.oneof(fc.constantFrom(...ZONES), fc.constantFrom(...AWKWARD_ZONES));
  const instant = fc.integer({ min: FIRST_INSTANT / 1000, max: LAST_INSTANT / 1000 }).map((seconds) => seconds * 1000);

  it('read back as the instant whose wall clock they show (the earliest when the clock shows it twice)', () => {
    fc.assert(
      fc.property(instant, zone, (original, timeZone) => {
        const text = wallClock(original, timeZone);
        const result = localReader.read(text, timeZone);
        if (!('value' in result)) {
          throw new Error(`${text} in ${timeZone}: ${result.problem}`);
        }
        const showing = instantsShowing(text, timeZone);
        expect(showing).toContain(original);
        expect(Date.parse(result.value)).toBe(showing[0]);
      }),
      { numRuns: 3000 }
    );
  });

  it('are a problem exactly for wall-clock times that no instant shows (gaps)', () => {
    const dstZone = fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...ZONES) }, { weight: 3, arbitrary: fc.constantFrom(...AWKWARD_ZONES) });
    const nearChange = fc.tuple(instant, dstZone, fc.integer({ min: -3600, max: 2 * 3600 }));
    let gaps = 0;
    fc.assert(
      fc.property(nearChange, ([start, timeZone, shiftSeconds]) => {
        // The wall clock just before the zone's next change of offset, run on as if it had not
        // changed, then shifted: when clocks go forward, some of these times are in the gap.
        const change = nextChange(start, timeZone) ?? start;
        const wall = asUtc(wallClock(change - 1000, timeZone)) + 1000 + shiftSeconds * 1000;
        const text = new Date(wall).toISOString().slice(0, 19).replace('T', ' ');
        const result = localReader.read(text, timeZone);
        const showing = instantsShowing(text, timeZone);
        if (showing.length === 0) {
          gaps++;
          expect(result).toEqual({
            problem: `is a local time that does not exist in ${timeZone} (the clocks skip it, as when daylight saving time starts)`,
          });
        } else {
          expect('value' in result && Date.parse(result.value)).toBe(showing[0]);
        }
      }),
      { numRuns: 1500 }
    );
    expect(gaps).toBeGreaterThan(10); // the generator does reach gaps
  });

  it('in a gap, near enough to a change of offset, are found (the generator reaches gaps)', () => {
    expect(instantsShowing('2023-03-12 02:30:00', 'America/New_York')).toEqual([]);
    expect(instantsShowing('2023-11-05 01:30:00', 'America/New_York')).toEqual([
      Date.UTC(2023, 10, 5, 5, 30),
      Date.UTC(2023, 10, 5, 6, 30),
    ]);
  });
});

describe('dates', () => {
  const us = reader('date', ['MM/DD/YYYY']);
  const usShort = reader('date', ['M/D/YYYY']);
  const day = fc.integer({ min: Date.UTC(1800, 0, 1) / 86_400_000, max: Date.UTC(9999, 11, 31) / 86_400_000 });

  it('every real date from 1800 on round trips through MM/DD/YYYY and M/D/YYYY', () => {
    fc.assert(
      fc.property(day, (dayNumber) => {
        const date = new Date(dayNumber * 86_400_000);
        const [month, dayOfMonth, year] = [date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCFullYear()];
        const iso = date.toISOString().slice(0, 10);
        expect(us.read(`${pad(month)}/${pad(dayOfMonth)}/${year}`, 'UTC')).toEqual({ value: iso });
        expect(usShort.read(`${month}/${dayOfMonth}/${year}`, 'UTC')).toEqual({ value: iso });
      }),
      { numRuns: 2000 }
    );
  });

  it('a date is read exactly when the calendar has it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1800, max: 2400 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (year, month, dayOfMonth) => {
        const real = new Date(Date.UTC(year, month - 1, dayOfMonth));
        const exists = month >= 1 && month <= 12 && real.getUTCDate() === dayOfMonth && real.getUTCMonth() === month - 1;
        const result = us.read(`${pad(month)}/${pad(dayOfMonth)}/${year}`, 'UTC');
        expect(result).toEqual(exists ? { value: real.toISOString().slice(0, 10) } : { problem: 'is not a real calendar date' });
      }),
      { numRuns: 2000 }
    );
  });
});

/** Pieces of text that look like parts of dates, so generated cells reach every check. */
const datePiece = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^\d{1,4}$/) },
  { weight: 3, arbitrary: fc.constantFrom('-', '/', '.', ':', ' ', 'T', 'Z', '+', '+01:00', '-0530', '+14:30', '.123', '1799', '2023', '02', '29', '30', '24', '60', '00') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }) }
);
const dateLike = fc.array(datePiece, { maxLength: 12 }).map((pieces) => pieces.join(''));

/** Real date-times written in the formats below, some of them altered. */
const nearlyValid = fc
  .tuple(fc.integer({ min: FIRST_INSTANT, max: LAST_INSTANT }), fc.constantFrom('iso', 'us', 'de'), fc.nat(20), fc.nat(9))
  .map(([instant, style, position, digit]) => {
    const text = new Date(instant).toISOString();
    const written =
      style === 'iso' ? text : style === 'us' ? `${text.slice(5, 7)}/${text.slice(8, 10)}/${text.slice(0, 4)} ${text.slice(11, 19)}` : `${text.slice(8, 10)}.${text.slice(5, 7)}.${text.slice(0, 4)} ${text.slice(11, 16)}`;
    return position < written.length ? written.slice(0, position) + digit + written.slice(position + 1) : written;
  });

const cellText = fc.oneof(dateLike, nearlyValid, fc.string({ unit: 'grapheme-composite' }));

describe('problems never depend on the cell', () => {
  const configurations: { kind: DateKind; formats: string[]; zone: string }[] = [
    { kind: 'date', formats: ['YYYY-MM-DD'], zone: 'UTC' },
    { kind: 'date', formats: ['ISO', 'MM/DD/YYYY', 'D.M.YYYY'], zone: 'UTC' },
    { kind: 'dateTime', formats: ['ISO', 'MM/DD/YYYY hh:mm:ss', 'DD.MM.YYYY hh:mm'], zone: 'America/New_York' },
    { kind: 'instant', formats: ['ISO', 'YYYY-MM-DD hh:mm:ss.SSSZ'], zone: 'Europe/Berlin' },
  ];

  for (const { kind, formats, zone } of configurations) {
    it(`${kind} in ${formats.join(', ')}: the problem is one of a fixed set and every value is valid FHIR`, () => {
      const dates = reader(kind, formats);
      const noun = kind === 'date' ? 'a date' : 'a date-time';
      const shown = formats.map((format) => (format === 'ISO' ? 'ISO 8601' : format)).join(', ');
      const allowed = new Set([
        formats.length === 1 ? `must be ${noun} in the format ${shown}` : `must be ${noun} in one of the formats ${shown}`,
        'is not a real calendar date',
        'has an impossible time of day',
        'has a time zone offset beyond ±14:00',
        'has an impossible time zone offset (minutes above 59)',
        'is before 1800 (a placeholder date?)',
        `is a local time that does not exist in ${zone} (the clocks skip it, as when daylight saving time starts)`,
      ]);
      fc.assert(
        fc.property(cellText, (text) => {
          const result = dates.read(text, zone);
          if ('problem' in result) {
            expect(allowed).toContain(result.problem);
            if (text.length >= 6) {
              expect(result.problem).not.toContain(text);
            }
          } else {
            expect(result.value).toMatch(FHIR_PATTERNS[kind]);
            expect(typeof isAfter(result.value, new Date())).toBe('boolean');
          }
        }),
        { numRuns: 3000 }
      );
    });
  }

  const numberText = fc.oneof(
    fc.array(fc.oneof(fc.stringMatching(/^\d{1,20}$/), fc.constantFrom('.', '-', '+', 'e', ',', ' ', '0x', 'NaN', 'Infinity')), { maxLength: 6 }).map((pieces) => pieces.join('')),
    fc.string({ unit: 'grapheme-composite' })
  );

  it('numbers and booleans: the problem is one of a fixed set per rule', () => {
    const decimalProblems = new Set([
      'must be a decimal number such as 12.5',
      'has more than 15 significant digits (it would not be stored exactly)',
      'is too large or too small a number to be stored exactly',
    ]);
    const integerProblems: Record<IntegerKind, string> = {
      integer: 'must be a whole number from -2147483648 to 2147483647',
      positiveInt: 'must be a whole number from 1 to 2147483647',
      unsignedInt: 'must be a whole number from 0 to 2147483647',
    };
    fc.assert(
      fc.property(numberText, fc.constantFrom<IntegerKind>('integer', 'positiveInt', 'unsignedInt'), (text, kind) => {
        const decimal = readDecimal(text);
        if ('problem' in decimal) {
          expect(decimalProblems).toContain(decimal.problem);
        }
        const integer = readInteger(text, kind);
        if ('problem' in integer) {
          expect(integer.problem).toBe(integerProblems[kind]);
        }
        const boolean = readBoolean(text);
        if ('problem' in boolean) {
          expect(boolean.problem).toBe('must be one of true, yes, y, 1 / false, no, n, 0');
        }
        for (const problem of [decimal, integer, boolean].flatMap((r) => ('problem' in r ? [r.problem] : []))) {
          if (text.length >= 6) {
            expect(problem).not.toContain(text);
          }
        }
      }),
      { numRuns: 3000 }
    );
  });
});

/** A decimal string's value as sign, significant digits and exponent, so equal numbers compare equal however written. */
function decimalValue(text: string): string {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/.exec(text);
  if (!match) {
    throw new Error(`not a decimal: ${text}`);
  }
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  const digits = `${whole}${fraction}`;
  const leading = digits.length - digits.replace(/^0+/, '').length;
  const significant = digits.replace(/^0+/, '').replace(/0+$/, '');
  if (significant === '') {
    return '0';
  }
  // The value is 0.<significant> x 10^power.
  const power = whole.length - leading + Number(exponent);
  return `${sign === '-' ? '-' : ''}0.${significant}e${power}`;
}

describe('decimals', () => {
  it('numbers written by toString in plain notation read back as the same number', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (number) => {
        const text = String(number);
        const result = readDecimal(text);
        if (/e/.test(text)) {
          expect(result).toEqual({ problem: 'must be a decimal number such as 12.5' });
        } else if (decimalValue(text).replace(/^-?0\.|e.*$/g, '').length > 15) {
          expect(result).toEqual({ problem: 'has more than 15 significant digits (it would not be stored exactly)' });
        } else {
          expect(result).toEqual({ value: number === 0 ? 0 : number });
        }
      }),
      { numRuns: 3000 }
    );
  });

  it('any decimal of at most 15 significant digits keeps its value through JSON; more are refused', () => {
    const decimalText = fc
      .tuple(fc.constantFrom('', '-', '+'), fc.stringMatching(/^\d{0,20}$/), fc.option(fc.stringMatching(/^\d{1,20}$/)))
      .filter(([, whole, fraction]) => whole !== '' || fraction !== null)
      .map(([sign, whole, fraction]) => `${sign}${whole}${fraction === null ? '' : `.${fraction}`}`);
    fc.assert(
      fc.property(decimalText, (text) => {
        const significant = decimalValue(text).replace(/^-?0\.|e.*$/g, '');
        const result = readDecimal(text);
        if (significant.length > 15) {
          expect(result).toEqual({ problem: 'has more than 15 significant digits (it would not be stored exactly)' });
          return;
        }
        if (!('value' in result)) {
          throw new Error(`${text}: ${result.problem}`);
        }
        const written = JSON.parse(JSON.stringify({ value: result.value })).value as number;
        expect(decimalValue(String(written))).toBe(decimalValue(text));
      }),
      { numRuns: 3000 }
    );
  });

  it('integers in range read as themselves; others are refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 33), max: 2 ** 33 }), fc.constantFrom<IntegerKind>('integer', 'positiveInt', 'unsignedInt'), (number, kind) => {
        const min = { integer: -2147483648, positiveInt: 1, unsignedInt: 0 }[kind];
        const inRange = number >= min && number <= 2147483647;
        expect('value' in readInteger(String(number), kind)).toBe(inRange);
        if (inRange) {
          expect(readInteger(String(number), kind)).toEqual({ value: number === 0 ? 0 : number });
        }
      }),
      { numRuns: 2000 }
    );
  });
});
