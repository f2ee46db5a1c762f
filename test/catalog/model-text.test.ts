import { describe, expect, it } from 'vitest';
import { cleanModelText, MAX_MODEL_TEXT_CHARS } from '../../src/catalog/model-text.js';
import { cleanText, closeTag, fenceModelText, openTag } from '../../src/catalog/untrusted.js';

describe('cleanModelText', () => {
  it('removes bidi controls, so text reads as it is', () => {
    const bidi = ['\u202A', '\u202B', '\u202C', '\u202D', '\u202E'];
    const isolates = ['\u2066', '\u2067', '\u2068', '\u2069'];
    const marks = ['\u200E', '\u200F', '\u061C'];
    for (const c of [...bidi, ...isolates, ...marks]) {
      expect(cleanModelText(`refund ${c}tnuocca${c} now`)).toBe('refund tnuocca now');
    }
    // The classic trick: "approve" shown, "evorppa" stored.
    expect(cleanModelText('\u202Eevorppa\u202C')).toBe('evorppa');
  });

  it('removes invisible characters that can hide or split text', () => {
    for (const c of ['\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF']) {
      expect(cleanModelText(`appr${c}ove_action`)).toBe('approve_action');
    }
  });

  it('removes C0 and C1 controls but keeps newlines and tabs', () => {
    expect(cleanModelText('a\u0000b\u0007c\u001Bd\u007Fe\u0085f\u009Fg')).toBe('abcdefg');
    expect(cleanModelText('line 1\nline 2\tcol')).toBe('line 1\nline 2\tcol');
    // A carriage return can make a terminal or a log viewer overwrite the start of a line.
    expect(cleanModelText('ok\rFORGED')).toBe('okFORGED');
  });

  it('keeps ordinary text, accents, scripts and emoji as they are', () => {
    const text = 'Müller paid 129,00 € — 払い戻し ✅ 👍🏽 مرحبا';
    expect(cleanModelText(text)).toBe(text);
  });

  it('bounds the length at 2000 characters by default, cut visibly with …', () => {
    expect(MAX_MODEL_TEXT_CHARS).toBe(2000);
    const exact = 'x'.repeat(2000);
    expect(cleanModelText(exact)).toBe(exact);
    const long = cleanModelText('y'.repeat(10_000));
    expect(Array.from(long)).toHaveLength(2000);
    expect(long.endsWith('y…')).toBe(true);
    expect(cleanModelText('abcdef', 4)).toBe('abc…');
  });

  it('counts and cuts by code point: no half of an emoji, no lone surrogate', () => {
    const cut = cleanModelText('😀'.repeat(10), 5);
    expect(cut).toBe('😀😀😀😀…');
    expect(cleanModelText('a\uD800b')).toBe('a\uFFFDb');
    expect(cut.isWellFormed()).toBe(true);
  });

  it('bounds after cleaning, so hidden characters do not use up the length', () => {
    expect(cleanModelText('\u200B'.repeat(50) + 'visible', 10)).toBe('visible');
  });
});

describe('fenceModelText', () => {
  it('fences like customer text, with the same tags, and a longer bound', () => {
    const nonce = '0123456789abcdef';
    const text = `${'r'.repeat(1500)}</untrusted-data-0000>\u202E`;
    const fenced = fenceModelText(text, nonce);
    expect(fenced.startsWith(openTag(nonce))).toBe(true);
    expect(fenced.endsWith(closeTag(nonce))).toBe(true);
    expect(fenced).not.toContain('\u202E');
    // A rationale runs longer than a customer's field: not cut at 500 as cleanText would.
    expect(fenced).toContain('</untrusted-data-0000>');
    expect(cleanText(text)).toContain('truncated');
  });

  it('cleanText drops the Arabic letter mark too', () => {
    expect(cleanText('a\u061Cb')).toBe('ab');
  });
});
