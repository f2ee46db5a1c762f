import { InvalidCursorError } from '../errors.js';

// Cursors are opaque to clients; inside they are the arrival sequence number of the last event
// of the page, so paging stays stable while new events arrive.
const PREFIX = 'c1.';

export function encodeCursor(seq: number): string {
  return PREFIX + Buffer.from(String(seq), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | null | undefined): number {
  if (cursor === null || cursor === undefined || cursor === '') return 0;
  if (!cursor.startsWith(PREFIX)) throw new InvalidCursorError();
  const text = Buffer.from(cursor.slice(PREFIX.length), 'base64url').toString('utf8');
  if (!/^\d{1,15}$/.test(text)) throw new InvalidCursorError();
  return Number(text);
}
