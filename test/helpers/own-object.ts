import crypto from 'node:crypto';

/**
 * The fixture event about an object of its own. The fixtures share one object per type (one
 * dispute, one invoice, …), and events about one object are claimed one at a time, oldest first
 * (src/buffer/object-order.ts): a test that sends many events standing for different objects
 * gives each its own.
 */
export function ownObject<T extends Record<string, unknown>>(event: T): T {
  const object = (event.data as { object?: { id?: unknown } } | undefined)?.object;
  if (object && typeof object.id === 'string') {
    object.id = `${object.id}_${crypto.randomBytes(4).toString('hex')}`;
  }
  return event;
}
