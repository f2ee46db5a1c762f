/**
 * Text into HTML, for the pages the project renders on the server (the console, rehearse's
 * report): every character that could open markup or end an attribute is an entity, so
 * customer-written text (a name like `<img src=x onerror=…>`) shows as text and never runs.
 */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
