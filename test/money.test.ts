import { describe, expect, it } from 'vitest';
import { callAmount, formatAmount, formatAmountOrNull, minorUnitDigits } from '../src/money.js';

describe('formatAmount: minor units read in their currency (Stripe’s decimals)', () => {
  it('reads usd cents as dollars', () => {
    expect(formatAmount(412000, 'usd')).toBe('$4,120.00');
    expect(formatAmount(12900, 'usd')).toBe('$129.00');
    expect(formatAmount(1, 'usd')).toBe('$0.01');
  });

  it('reads zero-decimal currencies (jpy, krw) as whole units', () => {
    expect(formatAmount(50000, 'jpy')).toBe('¥50,000');
    expect(formatAmount(75000, 'krw')).toBe('₩75,000');
    // Not what Intl thinks of CLP, but Stripe's: CLP is zero-decimal there.
    expect(formatAmount(5000, 'clp')).toBe('CLP 5,000');
  });

  it('reads three-decimal currencies (bhd, kwd) with three decimals', () => {
    expect(formatAmount(1500, 'bhd')).toBe('BHD 1.500');
    expect(formatAmount(1234567, 'kwd')).toBe('KWD 1,234.567');
  });

  it('formats negative amounts and zero', () => {
    expect(formatAmount(-412000, 'usd')).toBe('-$4,120.00');
    expect(formatAmount(0, 'usd')).toBe('$0.00');
    expect(formatAmount(-0, 'usd')).toBe('$0.00');
    expect(formatAmount(0, 'jpy')).toBe('¥0');
  });

  it('takes the code in any case', () => {
    expect(formatAmount(412000, 'USD')).toBe('$4,120.00');
    expect(formatAmount(50000, 'JPY')).toBe('¥50,000');
    expect(formatAmount(1500, 'Bhd')).toBe('BHD 1.500');
    expect(formatAmount(45000, 'eur')).toBe('€450.00');
  });

  it('never throws on an unknown or malformed code: two decimals and the code after', () => {
    expect(formatAmount(123456, 'xyz')).toBe('1,234.56 XYZ');
    expect(formatAmount(123456, 'not a code')).toBe('1,234.56 NOTACODE');
    expect(formatAmount(123456, '')).toBe('1,234.56');
    expect(formatAmount(Number.NaN, 'usd')).toBe('NaN USD');
  });

  it('keeps the list of exponents in one place', () => {
    expect(minorUnitDigits('usd')).toBe(2);
    expect(minorUnitDigits('JPY')).toBe(0);
    expect(minorUnitDigits('xpf')).toBe(0);
    expect(minorUnitDigits('tnd')).toBe(3);
  });
});

describe('formatAmountOrNull and callAmount', () => {
  it('is null when the amount or the currency is missing', () => {
    expect(formatAmountOrNull(null, 'usd')).toBeNull();
    expect(formatAmountOrNull(412000, null)).toBeNull();
    expect(formatAmountOrNull('412000', 'usd')).toBeNull();
    expect(formatAmountOrNull(412000, ' ')).toBeNull();
    expect(formatAmountOrNull(412000, 'usd')).toBe('$4,120.00');
  });

  it('reads a tool call’s amount and currency', () => {
    expect(callAmount({ amount: 412000, currency: 'usd', reason: 'fraudulent' })).toBe('$4,120.00');
    expect(callAmount({ amount: null, currency: 'usd' })).toBeNull();
    expect(callAmount(null)).toBeNull();
  });
});
