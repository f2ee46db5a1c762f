import { z } from 'zod';

/**
 * An integer setting from text: whole decimal digits only. `Number()` (and `z.coerce.number()`)
 * also read `1e3`, `0x2390`, `9120.0` and `0b1`, so a typo or a paste from elsewhere could become a
 * setting nobody wrote; those are refused with the reason, and the range is checked after.
 */
export function wholeNumber(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z.string().transform((raw, ctx) => {
    const text = raw.trim();
    if (!/^-?\d+$/.test(text)) {
      const message =
        text === '' || Number.isNaN(Number(text)) ? 'not a number' : 'not a whole decimal number';
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    const value = Number(text);
    if (value < min) ctx.addIssue({ code: 'custom', message: `below ${min}` });
    else if (value > max) ctx.addIssue({ code: 'custom', message: `above ${max}` });
    return value;
  });
}
