import fc from 'fast-check';
import { Decimal, decimalOf, toMoneyNumber } from './money';

/**
 * toMoneyNumber reads NUMERIC text with at most 10 fractional digits straight through Number();
 * it must give the number Decimal's own path gives for every such text, and still round the rest.
 */
describe('toMoneyNumber', () => {
  const viaDecimal = (text: string) => {
    const amount = new Decimal(text);
    return (amount.decimalPlaces() <= 10 ? amount : amount.toDecimalPlaces(10)).toNumber();
  };

  it('NUMERIC text: the same number as through Decimal', () => {
    const text = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 13n }), fc.integer({ min: 0, max: 10 }), fc.bigInt({ min: 0n, max: 10n ** 10n - 1n }))
      .map(([negative, whole, places, fraction]) =>
        `${negative ? '-' : ''}${whole}${places ? `.${String(fraction).padStart(10, '0').slice(0, places)}` : ''}`);
    fc.assert(fc.property(text, (value) => Object.is(toMoneyNumber(value), viaDecimal(value))), { numRuns: 20_000, seed: 17 });
    for (const value of ['0', '-0', '0.0000000001', '9999999999999.9999999999', '50.0000000000', '1e-7', '0.1', '0.30000000000000004']) {
      expect(toMoneyNumber(value)).toBe(viaDecimal(value));
    }
  });

  it('more than 10 fractional digits, exponents, Decimals, null: rounded or read as before', () => {
    expect(toMoneyNumber('0.12345678905')).toBe(0.1234567891);
    expect(toMoneyNumber('1.5e-3')).toBe(0.0015);
    expect(toMoneyNumber(new Decimal('2.00000000005'))).toBe(2.0000000001);
    expect(toMoneyNumber(null)).toBe(0);
    expect(toMoneyNumber(undefined)).toBe(0);
    expect(toMoneyNumber(7.25)).toBe(7.25);
  });
});

describe('decimalOf', () => {
  it('the Decimal of the text, the same instance while it is kept, and a fresh one after 10,000 other texts', () => {
    const first = decimalOf('123.4500000000');
    expect(first.equals(new Decimal('123.45'))).toBe(true);
    expect(decimalOf('123.4500000000')).toBe(first);
    for (let i = 0; i < 10_000; i += 1) decimalOf(`${i}.5`);
    const again = decimalOf('123.4500000000');
    expect(again).not.toBe(first);
    expect(again.equals(first)).toBe(true);
  });
});
