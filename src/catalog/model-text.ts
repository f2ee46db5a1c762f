/**
 * Text a model or a dispatch sink wrote (a decision's rationale, a customer message draft, a
 * person-must-look reason, an HTTP handler's error body) is as untrusted as customer-written text:
 * it can carry instructions aimed at whichever model reads it next. Before it reaches one, it is
 * cleaned here and then fenced like customer text.
 */

export const MAX_MODEL_TEXT_CHARS = 2000;

// C0 controls except tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates and
// marks, and the zero-width characters that can hide text or make it render differently from
// what it is.
const HIDDEN =
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/g;

/** Removes control and invisible format characters and bounds the length, cut visibly with `…`. */
export function cleanModelText(text: string, max: number = MAX_MODEL_TEXT_CHARS): string {
  const cleaned = text.toWellFormed().replace(HIDDEN, '');
  const chars = Array.from(cleaned);
  if (chars.length <= max) return cleaned;
  return chars.slice(0, Math.max(0, max - 1)).join('') + '…';
}
