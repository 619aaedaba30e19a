import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FALSE_VALUES,
  DEFAULT_TRUE_VALUES,
  readBoolean,
  readDecimal,
  readInteger,
} from '../../src/lib/values/numbers';

const NOT_A_DECIMAL = { problem: 'must be a decimal number such as 12.5' };

describe('readDecimal', () => {
  it.each([
    ['1.5', 1.5],
    ['-2', -2],
    ['+3', 3],
    ['0.50', 0.5],
    ['.5', 0.5],
    ['-.5', -0.5],
    ['007', 7],
    ['0', 0],
    ['-0', 0],
    ['-0.000', 0],
    ['123456789012345', 123456789012345],
    ['1234567890.12345', 1234567890.12345],
    ['0.000000000000000000001', 1e-21],
    ['100000000000000000000000', 1e23],
    ['12345678901234500000', 12345678901234500000],
  ])('reads %s', (text, value) => {
    expect(readDecimal(text)).toEqual({ value });
  });

  it('never gives a negative zero (JSON has none)', () => {
    const result = readDecimal('-0.0');
    expect('value' in result && Object.is(result.value, 0)).toBe(true);
  });

  it.each(['5.', '.', '', '-', '+', '1e3', '1E3', '1,000', '1 000', '1.000,5', 'NaN', 'Infinity', '-Infinity', '0x10', '0b1', '1_000', '١٢', '1.2.3', '--1', '+-1', ' 1', '1 ', '$5', '5%'])(
    'refuses %j',
    (text) => {
      expect(readDecimal(text)).toEqual(NOT_A_DECIMAL);
    }
  );

  it('refuses more than 15 significant digits rather than changing the value', () => {
    const problem = { problem: 'has more than 15 significant digits (it would not be stored exactly)' };
    expect(readDecimal('1234567890123456')).toEqual(problem);
    expect(readDecimal('0.1234567890123456')).toEqual(problem);
    expect(readDecimal('9007199254740993')).toEqual(problem);
    expect(readDecimal('1000000000000001')).toEqual(problem);
    // Leading and trailing zeros are not significant.
    expect(readDecimal('000000000000000001.5000000000000000')).toEqual({ value: 1.5 });
  });

  it('refuses numbers beyond the range of doubles', () => {
    const problem = { problem: 'is too large or too small a number to be stored exactly' };
    expect(readDecimal(`1${'0'.repeat(400)}`)).toEqual(problem);
    expect(readDecimal(`0.${'0'.repeat(400)}1`)).toEqual(problem);
    expect(readDecimal(`0.${'0'.repeat(310)}1`)).toEqual(problem);
  });
});

describe('readInteger', () => {
  it('reads whole numbers with a sign and leading zeros', () => {
    expect(readInteger('42', 'integer')).toEqual({ value: 42 });
    expect(readInteger('-42', 'integer')).toEqual({ value: -42 });
    expect(readInteger('+42', 'integer')).toEqual({ value: 42 });
    expect(readInteger('0042', 'positiveInt')).toEqual({ value: 42 });
    expect(readInteger('-0', 'unsignedInt')).toEqual({ value: 0 });
  });

  it('keeps to the 32-bit signed range of integer', () => {
    const problem = { problem: 'must be a whole number from -2147483648 to 2147483647' };
    expect(readInteger('2147483647', 'integer')).toEqual({ value: 2147483647 });
    expect(readInteger('-2147483648', 'integer')).toEqual({ value: -2147483648 });
    expect(readInteger('2147483648', 'integer')).toEqual(problem);
    expect(readInteger('-2147483649', 'integer')).toEqual(problem);
    expect(readInteger('9'.repeat(400), 'integer')).toEqual(problem);
  });

  it('positiveInt starts at 1, unsignedInt at 0', () => {
    expect(readInteger('1', 'positiveInt')).toEqual({ value: 1 });
    expect(readInteger('0', 'positiveInt')).toEqual({ problem: 'must be a whole number from 1 to 2147483647' });
    expect(readInteger('-1', 'positiveInt')).toEqual({ problem: 'must be a whole number from 1 to 2147483647' });
    expect(readInteger('0', 'unsignedInt')).toEqual({ value: 0 });
    expect(readInteger('-1', 'unsignedInt')).toEqual({ problem: 'must be a whole number from 0 to 2147483647' });
    expect(readInteger('2147483648', 'unsignedInt')).toEqual({ problem: 'must be a whole number from 0 to 2147483647' });
  });

  it.each(['1.0', '1.5', '1e3', '1,000', '', '-', 'NaN', 'Infinity', '0x10', ' 1', '١'])('refuses %j', (text) => {
    expect(readInteger(text, 'integer')).toEqual({ problem: 'must be a whole number from -2147483648 to 2147483647' });
  });
});

describe('readBoolean', () => {
  it('reads the default words in any case', () => {
    for (const word of ['true', 'TRUE', 'Yes', 'y', 'Y', '1']) {
      expect(readBoolean(word)).toEqual({ value: true });
    }
    for (const word of ['false', 'False', 'NO', 'n', '0']) {
      expect(readBoolean(word)).toEqual({ value: false });
    }
    expect(DEFAULT_TRUE_VALUES).toEqual(['true', 'yes', 'y', '1']);
    expect(DEFAULT_FALSE_VALUES).toEqual(['false', 'no', 'n', '0']);
  });

  it('names the accepted words when refusing', () => {
    for (const word of ['', 't', 'f', '2', 'yes please', 'oui', '1.0']) {
      expect(readBoolean(word)).toEqual({ problem: 'must be one of true, yes, y, 1 / false, no, n, 0' });
    }
  });

  it('reads declared words instead of the defaults', () => {
    const trueWords = ['J', 'Ja'];
    const falseWords = ['N', 'Nein'];
    expect(readBoolean('ja', trueWords, falseWords)).toEqual({ value: true });
    expect(readBoolean('NEIN', trueWords, falseWords)).toEqual({ value: false });
    expect(readBoolean('yes', trueWords, falseWords)).toEqual({ problem: 'must be one of J, Ja / N, Nein' });
    expect(readBoolean('yes', undefined, falseWords)).toEqual({ value: true });
  });
});
