import { describe, expect, it } from 'vitest';
import { compileDateFormats, isAfter, isTimeZone } from '../../src/lib/values/date-time';
import type { DateKind, DateReader } from '../../src/lib/values/date-time';

function reader(kind: DateKind, formats: readonly string[]): DateReader {
  const compiled = compileDateFormats(kind, formats);
  if ('error' in compiled) {
    throw new Error(compiled.error);
  }
  return compiled;
}

function compileError(kind: DateKind, formats: readonly string[]): string | undefined {
  const compiled = compileDateFormats(kind, formats);
  return 'error' in compiled ? compiled.error : undefined;
}

const read = (kind: DateKind, formats: readonly string[], text: string, timeZone = 'UTC'): unknown =>
  reader(kind, formats).read(text, timeZone);

const DST_GAP_NEW_YORK =
  'is a local time that does not exist in America/New_York (the clocks skip it, as when daylight saving time starts)';

describe('compileDateFormats', () => {
  it('keeps the kind and the formats as written', () => {
    const compiled = reader('dateTime', ['ISO', 'MM/DD/YYYY']);
    expect(compiled.kind).toBe('dateTime');
    expect(compiled.formats).toEqual(['ISO', 'MM/DD/YYYY']);
  });

  it('names an unknown token and its format', () => {
    expect(compileError('date', ['Q-YYYY'])).toBe('unknown token "Q" in format "Q-YYYY"');
    expect(compileError('date', ['YYYY-MM-DD', 'YYYY/MMM'])).toBe('unknown token "MMM" in format "YYYY/MMM"');
    expect(compileError('date', ['YYYY,MM'])).toBe('unknown token "," in format "YYYY,MM"');
    expect(compileError('date', ['YYYY-MM-D1'])).toBe('unknown token "1" in format "YYYY-MM-D1"');
    expect(compileError('date', ['iso'])).toBe('unknown format "iso" (write ISO)');
  });

  it('points at the right token for spellings of other libraries', () => {
    expect(compileError('date', ['yyyy-MM-dd'])).toBe('unknown token "yyyy" in format "yyyy-MM-dd" (write YYYY)');
    expect(compileError('dateTime', ['YYYY-MM-DD HH:mm'])).toBe('unknown token "HH" in format "YYYY-MM-DD HH:mm" (write hh)');
    expect(compileError('dateTime', ['YYYY-MM-DD hh:mm:ssSSS'])).toBe(
      'unknown token "SSS" in format "YYYY-MM-DD hh:mm:ssSSS" (write .SSS)'
    );
    expect(compileError('dateTime', ['YYYY-MM-DD hh:mm:ss,S'])).toBe('unknown token "," in format "YYYY-MM-DD hh:mm:ss,S"');
  });

  it('refuses formats without a year, with gaps, or with a part twice', () => {
    expect(compileDateFormats('date', [])).toEqual({ error: 'no date formats given' });
    expect(compileError('date', [''])).toBe('format "" is empty');
    expect(compileError('date', ['MM/DD'])).toBe('format "MM/DD" has no year (YYYY)');
    expect(compileError('date', ['YYYY-DD'])).toBe('format "YYYY-DD" has a day but no month');
    expect(compileError('date', ['YYYY-MM-DD/DD'])).toBe('format "YYYY-MM-DD/DD" has the day twice');
    expect(compileError('date', ['M/MM/YYYY'])).toBe('format "M/MM/YYYY" has the month twice');
    expect(compileError('dateTime', ['YYYY-MM hh:mm'])).toBe(
      'format "YYYY-MM hh:mm" has a time but not a whole date (year, month and day)'
    );
    expect(compileError('dateTime', ['YYYY-MM-DD hh'])).toBe(
      'format "YYYY-MM-DD hh" has a time without both hours (hh) and minutes (mm)'
    );
    expect(compileError('dateTime', ['YYYY-MM-DD mm:ss'])).toBe(
      'format "YYYY-MM-DD mm:ss" has a time without both hours (hh) and minutes (mm)'
    );
    expect(compileError('dateTime', ['YYYY-MM-DD hh:mm.SSS'])).toBe(
      'format "YYYY-MM-DD hh:mm.SSS" has a fraction of a second (.SSS) but no seconds (ss)'
    );
    expect(compileError('dateTime', ['YYYY-MM-DDZ'])).toBe('format "YYYY-MM-DDZ" has a zone (Z) but no time');
  });

  it('refuses a digit run with two variable-width numbers (ambiguous)', () => {
    expect(compileError('date', ['YYYYMD'])).toBe('format "YYYYMD" needs a separator between "M" and "D"');
    expect(compileError('date', ['DMYYYY'])).toBe('format "DMYYYY" needs a separator between "D" and "M"');
    expect(compileError('dateTime', ['YYYY-MM hh:mm:ss.SSSD'])).toBe(
      'format "YYYY-MM hh:mm:ss.SSSD" needs a separator between ".SSS" and "D"'
    );
    expect(compileError('dateTime', ['M/D/YYYY hh:mm:ss.SSSZ'])).toBeUndefined();
    expect(compileError('date', ['YYYYMMDD'])).toBeUndefined();
    expect(compileError('date', ['YYYYMMD'])).toBeUndefined();
    expect(compileError('date', ['M/D/YYYY'])).toBeUndefined();
  });

  it('refuses time tokens for dates and formats without a time for instants', () => {
    expect(compileError('date', ['YYYY-MM-DD hh:mm'])).toBe('format "YYYY-MM-DD hh:mm" has a time, but a date has none');
    expect(compileError('instant', ['YYYY-MM-DD'])).toBe('format "YYYY-MM-DD" has no time, but an instant needs one (hh:mm)');
    expect(compileError('dateTime', ['YYYY-MM-DD', 'YYYY-MM-DD hh:mm'])).toBeUndefined();
    expect(compileError('instant', ['ISO'])).toBeUndefined();
    expect(compileError('date', ['ISO'])).toBeUndefined();
  });
});

describe('format tokens', () => {
  it('YYYY, MM and DD: four and two digits exactly', () => {
    expect(read('date', ['YYYY-MM-DD'], '2023-01-27')).toEqual({ value: '2023-01-27' });
    expect(read('date', ['YYYY-MM-DD'], '2023-1-27')).toEqual({ problem: 'must be a date in the format YYYY-MM-DD' });
    expect(read('date', ['YYYY-MM-DD'], '23-01-27')).toEqual({ problem: 'must be a date in the format YYYY-MM-DD' });
    expect(read('date', ['YYYYMMDD'], '20230127')).toEqual({ value: '2023-01-27' });
  });

  it('M and D: one or two digits, written back with two', () => {
    const us = reader('date', ['M/D/YYYY']);
    expect(us.read('1/5/2023', 'UTC')).toEqual({ value: '2023-01-05' });
    expect(us.read('12/31/2023', 'UTC')).toEqual({ value: '2023-12-31' });
    expect(us.read('01/05/2023', 'UTC')).toEqual({ value: '2023-01-05' });
    expect(us.read('123/5/2023', 'UTC')).toEqual({ problem: 'must be a date in the format M/D/YYYY' });
  });

  it('year and month alone give a partial date', () => {
    expect(read('date', ['YYYY'], '1999')).toEqual({ value: '1999' });
    expect(read('date', ['MM/YYYY'], '07/1999')).toEqual({ value: '1999-07' });
    expect(read('dateTime', ['M/YYYY'], '7/1999')).toEqual({ value: '1999-07' });
  });

  it('hh, mm and ss; seconds default to 00', () => {
    expect(read('dateTime', ['YYYY-MM-DD hh:mm:ss'], '2023-01-27 16:17:47')).toEqual({ value: '2023-01-27T16:17:47Z' });
    expect(read('dateTime', ['YYYY-MM-DD hh:mm'], '2023-01-27 16:17')).toEqual({ value: '2023-01-27T16:17:00Z' });
    expect(read('dateTime', ['DD.MM.YYYY hh:mm'], '27.01.2023 09:05')).toEqual({ value: '2023-01-27T09:05:00Z' });
    expect(read('dateTime', ['YYYY-MM-DD hh:mm'], '2023-01-27 9:05')).toEqual({
      problem: 'must be a date-time in the format YYYY-MM-DD hh:mm',
    });
  });

  it('.SSS: any number of fraction digits from 1 to 9, kept as written', () => {
    const withFraction = reader('dateTime', ['YYYY-MM-DD hh:mm:ss.SSS']);
    expect(withFraction.read('2023-01-27 16:17:47.1', 'UTC')).toEqual({ value: '2023-01-27T16:17:47.1Z' });
    expect(withFraction.read('2023-01-27 16:17:47.120', 'UTC')).toEqual({ value: '2023-01-27T16:17:47.120Z' });
    expect(withFraction.read('2023-01-27 16:17:47.123456789', 'UTC')).toEqual({ value: '2023-01-27T16:17:47.123456789Z' });
    expect(withFraction.read('2023-01-27 16:17:47.1234567890', 'UTC')).toHaveProperty('problem');
    expect(withFraction.read('2023-01-27 16:17:47', 'UTC')).toHaveProperty('problem');
    expect(read('dateTime', ['YYYY-MM-DD hh:mm:ss.S'], '2023-01-27 16:17:47.123')).toEqual({
      value: '2023-01-27T16:17:47.123Z',
    });
  });

  it('Z: Z, ±hh:mm or ±hhmm, written as Z or ±hh:mm', () => {
    const zoned = reader('dateTime', ['YYYY-MM-DD hh:mm:ssZ', 'YYYY-MM-DD hh:mm Z']);
    expect(zoned.read('2023-01-27 16:17:47Z', 'America/New_York')).toEqual({ value: '2023-01-27T16:17:47Z' });
    expect(zoned.read('2023-01-27 16:17:47+0100', 'UTC')).toEqual({ value: '2023-01-27T16:17:47+01:00' });
    expect(zoned.read('2023-01-27 16:17:47-05:30', 'UTC')).toEqual({ value: '2023-01-27T16:17:47-05:30' });
    expect(zoned.read('2023-01-27 16:17 +14:00', 'UTC')).toEqual({ value: '2023-01-27T16:17:00+14:00' });
    expect(zoned.read('2023-01-27 16:17 -00:00', 'UTC')).toEqual({ value: '2023-01-27T16:17:00Z' });
    expect(zoned.read('2023-01-27 16:17', 'UTC')).toHaveProperty('problem');
  });

  it('literals: - / . : space T', () => {
    expect(read('dateTime', ['YYYY/MM/DDThh.mm'], '2023/01/27T16.17')).toEqual({ value: '2023-01-27T16:17:00Z' });
    expect(read('date', ['DD.MM.YYYY'], '27x01x2023')).toEqual({ problem: 'must be a date in the format DD.MM.YYYY' });
    expect(read('date', ['MM/DD/YYYY'], '01-27-2023')).toEqual({ problem: 'must be a date in the format MM/DD/YYYY' });
  });
});

describe('ISO', () => {
  const iso = reader('dateTime', ['ISO']);

  it.each([
    ['2023', '2023'],
    ['2023-01', '2023-01'],
    ['2023-01-27', '2023-01-27'],
    ['2023-01-27T16:17', '2023-01-27T16:17:00Z'],
    ['2023-01-27T16:17:47Z', '2023-01-27T16:17:47Z'],
    ['2023-01-27T16:17:47.123456Z', '2023-01-27T16:17:47.123456Z'],
    ['2023-01-27T16:17:47+0100', '2023-01-27T16:17:47+01:00'],
    ['2023-01-27T16:17:47+01:00', '2023-01-27T16:17:47+01:00'],
    ['2023-01-27T16:17:47-05:30', '2023-01-27T16:17:47-05:30'],
    ['2023-01-27T16:17-05:30', '2023-01-27T16:17:00-05:30'],
    ['2023-01-27 16:17:47Z', '2023-01-27T16:17:47Z'],
    ['2023-01-27 16:17:47.5', '2023-01-27T16:17:47.5Z'],
  ])('dateTime %s -> %s', (text, value) => {
    expect(iso.read(text, 'UTC')).toEqual({ value });
  });

  it.each(['2023-1-27', '2023-01-27T16', '2023-01-27T16:17:47.', '2023-01-27T16:17:47+01', '2023-01-27t16:17', '20230127', '2023-01-27T16:17:47.1234567890Z', '2023-01-27TT16:17'])(
    'dateTime refuses %s',
    (text) => {
      expect(iso.read(text, 'UTC')).toEqual({ problem: 'must be a date-time in the format ISO 8601' });
    }
  );

  it('for kind date: YYYY, YYYY-MM and YYYY-MM-DD only', () => {
    const date = reader('date', ['ISO']);
    expect(date.read('2023', 'UTC')).toEqual({ value: '2023' });
    expect(date.read('2023-01', 'UTC')).toEqual({ value: '2023-01' });
    expect(date.read('2023-01-27', 'UTC')).toEqual({ value: '2023-01-27' });
    expect(date.read('2023-01-27T16:17:47Z', 'UTC')).toEqual({ problem: 'must be a date in the format ISO 8601' });
  });

  it('for kind instant: a time always', () => {
    const instant = reader('instant', ['ISO']);
    expect(instant.read('2023-01-27T16:17:47.123Z', 'UTC')).toEqual({ value: '2023-01-27T16:17:47.123Z' });
    expect(instant.read('2023-01-27 16:17', 'Europe/Berlin')).toEqual({ value: '2023-01-27T16:17:00+01:00' });
    expect(instant.read('2023-01-27', 'UTC')).toEqual({ problem: 'must be a date-time in the format ISO 8601' });
  });
});

describe('several formats', () => {
  const dates = reader('date', ['YYYY-MM-DD', 'MM/DD/YYYY']);

  it('the first format that reads the value wins', () => {
    expect(dates.read('2023-01-27', 'UTC')).toEqual({ value: '2023-01-27' });
    expect(dates.read('01/27/2023', 'UTC')).toEqual({ value: '2023-01-27' });
    expect(reader('date', ['MM/DD/YYYY', 'DD/MM/YYYY']).read('02/03/2023', 'UTC')).toEqual({ value: '2023-02-03' });
  });

  it('a value impossible in one format may be read by the next', () => {
    expect(reader('date', ['MM/DD/YYYY', 'DD/MM/YYYY']).read('27/01/2023', 'UTC')).toEqual({ value: '2023-01-27' });
  });

  it('lists the formats when none reads the value', () => {
    expect(dates.read('27.01.2023', 'UTC')).toEqual({ problem: 'must be a date in one of the formats YYYY-MM-DD, MM/DD/YYYY' });
    expect(reader('dateTime', ['ISO', 'MM/DD/YYYY hh:mm']).read('x', 'UTC')).toEqual({
      problem: 'must be a date-time in one of the formats ISO 8601, MM/DD/YYYY hh:mm',
    });
  });

  it('says what is wrong when a value has a format shape but is impossible in every one', () => {
    expect(dates.read('02/30/2023', 'UTC')).toEqual({ problem: 'is not a real calendar date' });
  });
});

describe('problems', () => {
  const dateTime = reader('dateTime', ['ISO', 'MM/DD/YYYY hh:mm:ss']);

  it.each([
    ['2023-02-30', 'is not a real calendar date'],
    ['2023-02-29', 'is not a real calendar date'],
    ['1900-02-29', 'is not a real calendar date'],
    ['2023-13-01', 'is not a real calendar date'],
    ['2023-00', 'is not a real calendar date'],
    ['2023-04-31T10:00Z', 'is not a real calendar date'],
    ['2023-01-00', 'is not a real calendar date'],
    ['2023-01-27T24:00', 'has an impossible time of day'],
    ['2023-01-27T12:61', 'has an impossible time of day'],
    ['2023-01-27T12:00:60Z', 'has an impossible time of day'],
    ['12/31/2023 23:59:60', 'has an impossible time of day'],
    ['2023-01-27T12:00+14:01', 'has a time zone offset beyond ±14:00'],
    ['2023-01-27T12:00-1500', 'has a time zone offset beyond ±14:00'],
    ['2023-01-27T12:00+05:60', 'has an impossible time zone offset (minutes above 59)'],
    ['1799-12-31', 'is before 1800 (a placeholder date?)'],
    ['1799', 'is before 1800 (a placeholder date?)'],
    ['0001-01', 'is before 1800 (a placeholder date?)'],
    ['1799-12-31T23:59:59-05:00', 'is before 1800 (a placeholder date?)'],
    ['01/01/1753 00:00:00', 'is before 1800 (a placeholder date?)'],
  ])('%s %s', (text, problem) => {
    expect(dateTime.read(text, 'UTC')).toEqual({ problem });
  });

  it('leap days that exist are read', () => {
    expect(dateTime.read('2024-02-29', 'UTC')).toEqual({ value: '2024-02-29' });
    expect(dateTime.read('2000-02-29', 'UTC')).toEqual({ value: '2000-02-29' });
    expect(dateTime.read('1800-01-01', 'UTC')).toEqual({ value: '1800-01-01' });
    expect(dateTime.read('2023-01-27T12:00-14:00', 'UTC')).toEqual({ value: '2023-01-27T12:00:00-14:00' });
  });

  it('an unknown time zone is a problem only for values without a zone', () => {
    expect(dateTime.read('2023-01-27T12:00', 'Mars/Olympus')).toEqual({
      problem: 'cannot be read: the time zone "Mars/Olympus" is not known',
    });
    expect(dateTime.read('2023-01-27T12:00Z', 'Mars/Olympus')).toEqual({ value: '2023-01-27T12:00:00Z' });
    expect(dateTime.read('2023-01-27', 'Mars/Olympus')).toEqual({ value: '2023-01-27' });
  });
});

describe('values without a zone', () => {
  const dateTime = reader('dateTime', ['ISO']);

  it('take the offset of the declared zone at that time', () => {
    expect(dateTime.read('2023-06-15 09:00', 'America/New_York')).toEqual({ value: '2023-06-15T09:00:00-04:00' });
    expect(dateTime.read('2023-01-15 09:00', 'America/New_York')).toEqual({ value: '2023-01-15T09:00:00-05:00' });
    expect(dateTime.read('2023-06-15 09:00', 'Europe/Berlin')).toEqual({ value: '2023-06-15T09:00:00+02:00' });
    expect(dateTime.read('2023-06-15 09:00', 'Asia/Kolkata')).toEqual({ value: '2023-06-15T09:00:00+05:30' });
    expect(dateTime.read('2023-06-15 09:00', 'Asia/Kathmandu')).toEqual({ value: '2023-06-15T09:00:00+05:45' });
    expect(dateTime.read('2023-06-15 09:00:01.25', 'America/St_Johns')).toEqual({ value: '2023-06-15T09:00:01.25-02:30' });
  });

  it('in UTC (and any zone at offset zero) are written with Z', () => {
    expect(dateTime.read('2023-06-15 09:00', 'UTC')).toEqual({ value: '2023-06-15T09:00:00Z' });
    expect(dateTime.read('2023-01-15 09:00', 'Europe/London')).toEqual({ value: '2023-01-15T09:00:00Z' });
    expect(dateTime.read('2023-06-15 09:00', 'Europe/London')).toEqual({ value: '2023-06-15T09:00:00+01:00' });
  });

  it('in a daylight-saving gap are a problem naming the zone', () => {
    expect(dateTime.read('2023-03-12 02:30', 'America/New_York')).toEqual({ problem: DST_GAP_NEW_YORK });
    expect(dateTime.read('2023-03-12 02:00', 'America/New_York')).toEqual({ problem: DST_GAP_NEW_YORK });
    expect(dateTime.read('2023-03-12 01:59:59', 'America/New_York')).toEqual({ value: '2023-03-12T01:59:59-05:00' });
    expect(dateTime.read('2023-03-12 03:00', 'America/New_York')).toEqual({ value: '2023-03-12T03:00:00-04:00' });
    expect(dateTime.read('2023-03-26 02:30', 'Europe/Berlin')).toEqual({
      problem: 'is a local time that does not exist in Europe/Berlin (the clocks skip it, as when daylight saving time starts)',
    });
    expect(dateTime.read('2023-03-26 03:00', 'Europe/Berlin')).toEqual({ value: '2023-03-26T03:00:00+02:00' });
  });

  it('in an overlap (clocks going back) take the earlier instant, the offset before the change', () => {
    expect(dateTime.read('2023-11-05 01:30', 'America/New_York')).toEqual({ value: '2023-11-05T01:30:00-04:00' });
    expect(dateTime.read('2023-11-05 00:59:59', 'America/New_York')).toEqual({ value: '2023-11-05T00:59:59-04:00' });
    expect(dateTime.read('2023-11-05 02:00', 'America/New_York')).toEqual({ value: '2023-11-05T02:00:00-05:00' });
    expect(dateTime.read('2023-10-29 02:30', 'Europe/Berlin')).toEqual({ value: '2023-10-29T02:30:00+02:00' });
    expect(dateTime.read('2023-10-29 03:00', 'Europe/Berlin')).toEqual({ value: '2023-10-29T03:00:00+01:00' });
    // Lord Howe moves its clocks by half an hour.
    expect(dateTime.read('2023-04-02 01:45', 'Australia/Lord_Howe')).toEqual({ value: '2023-04-02T01:45:00+11:00' });
  });

  it('with a local mean time offset (seconds) are written as the same instant in UTC', () => {
    // New York kept local mean time, UTC-4:56:02, until 1883-11-18 12:03:58.
    expect(dateTime.read('1850-01-01 10:00', 'America/New_York')).toEqual({ value: '1850-01-01T14:56:02Z' });
    expect(dateTime.read('1850-01-01 10:00:00.5', 'America/New_York')).toEqual({ value: '1850-01-01T14:56:02.5Z' });
    expect(dateTime.read('1883-11-18 13:00', 'America/New_York')).toEqual({ value: '1883-11-18T13:00:00-05:00' });
  });

  it('a day skipped by a zone is a gap (Samoa, 2011-12-30)', () => {
    expect(dateTime.read('2011-12-30 12:00', 'Pacific/Apia')).toHaveProperty('problem');
    expect(dateTime.read('2011-12-29 12:00', 'Pacific/Apia')).toEqual({ value: '2011-12-29T12:00:00-10:00' });
    expect(dateTime.read('2011-12-31 12:00', 'Pacific/Apia')).toEqual({ value: '2011-12-31T12:00:00+14:00' });
  });

  it('keep a date alone as a date', () => {
    expect(dateTime.read('2023-03-12', 'America/New_York')).toEqual({ value: '2023-03-12' });
  });
});

describe('isTimeZone', () => {
  it('knows IANA names and UTC', () => {
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('America/Argentina/Buenos_Aires')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
    expect(isTimeZone('Europe/Berlin ')).toBe(false);
  });
});

describe('isAfter', () => {
  const limit = new Date('2023-06-15T12:00:00Z');

  it('compares a date by its whole day against the UTC day of the limit', () => {
    expect(isAfter('2023-06-15', limit)).toBe(false);
    expect(isAfter('2023-06-16', limit)).toBe(true);
    expect(isAfter('2023-06-14', limit)).toBe(false);
  });

  it('compares a year or a month by its first day', () => {
    expect(isAfter('2023-06', limit)).toBe(false);
    expect(isAfter('2023-07', limit)).toBe(true);
    expect(isAfter('2023', limit)).toBe(false);
    expect(isAfter('2024', limit)).toBe(true);
  });

  it('compares a date-time as an instant, with its offset and fraction', () => {
    expect(isAfter('2023-06-15T12:00:00Z', limit)).toBe(false);
    expect(isAfter('2023-06-15T12:00:00.000001Z', limit)).toBe(true);
    expect(isAfter('2023-06-15T12:00:01Z', limit)).toBe(true);
    expect(isAfter('2023-06-15T08:30:00-04:00', limit)).toBe(true);
    expect(isAfter('2023-06-15T13:30:00+02:00', limit)).toBe(false);
    expect(isAfter('2023-06-15T12:00:00.999+00:01', limit)).toBe(false);
  });

  it('refuses anything that is not a FHIR date, dateTime or instant', () => {
    expect(() => isAfter('06/15/2023', limit)).toThrow('isAfter: not a FHIR date, dateTime or instant');
  });
});
