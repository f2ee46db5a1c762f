import { describe, expect, it } from 'vitest';
import { confirmWords, timeLeft } from '../../src/console/render.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

describe('timeLeft', () => {
  it('says how long until a deadline, in the largest unit that reads well', () => {
    const now = Date.parse('2026-12-05T12:00:00Z');
    expect(timeLeft(now + 3 * DAY + HOUR, now)).toBe('due in 3 days');
    expect(timeLeft(now + 2 * DAY, now)).toBe('due in 2 days');
    expect(timeLeft(now + 47 * HOUR, now)).toBe('due in 47 h');
    expect(timeLeft(now + 90 * 60_000, now)).toBe('due in 90 min');
    expect(timeLeft(now + 10_000, now)).toBe('due in 1 min');
  });

  it('says how long ago a passed deadline was', () => {
    const now = Date.parse('2026-12-05T12:00:00Z');
    expect(timeLeft(now - 2 * HOUR, now)).toBe('overdue by 2 h');
    expect(timeLeft(now - 5 * DAY, now)).toBe('overdue by 5 days');
  });
});

describe('confirmWords', () => {
  it('repeats the amount, or names the call when it has none', () => {
    expect(confirmWords('$4,120.00', 'handle_dispute')).toBe('I approve sending $4,120.00');
    expect(confirmWords('¥50,000', 'handle_dispute')).toBe('I approve sending ¥50,000');
    expect(confirmWords(null, 'log_refund')).toBe('I approve dispatching this log_refund call');
  });
});
