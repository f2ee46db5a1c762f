/**
 * What every parked-notification store does (buffer/parked.ts): the data-dir file beside SQLite
 * and the Redis hash shared by instances.
 */
import { describe, expect, it } from 'vitest';
import type { ParkedNotification, ParkedStore } from '../../src/buffer/parked.js';

export interface ParkedHarness {
  store: ParkedStore;
  /** The same records as another process (or instance) sees them. */
  another: () => Promise<ParkedStore>;
  cleanup: () => Promise<void>;
}

function entry(n: number, at: string): ParkedNotification {
  return {
    id: `evt_thin_${n}`,
    type: 'v1.charge.dispute.created',
    snapshot_event: `evt_snapshot_${n}`,
    received_at: at,
  };
}

export function runParkedContract(name: string, factory: () => Promise<ParkedHarness>): void {
  describe(`parked notifications: ${name}`, () => {
    it('keeps one record per snapshot event, oldest first, until removed', async () => {
      const h = await factory();
      try {
        expect(await h.store.list()).toEqual([]);
        await h.store.add(entry(1, '2026-11-29T10:00:01.000Z'));
        await h.store.add(entry(2, '2026-11-29T10:00:02.000Z'));
        // Stripe delivers the notification again: still one record, the first one.
        await h.store.add({ ...entry(1, '2026-11-29T10:05:00.000Z'), id: 'evt_thin_again' });
        const other = await h.another();
        expect(await other.list()).toEqual([
          entry(1, '2026-11-29T10:00:01.000Z'),
          entry(2, '2026-11-29T10:00:02.000Z'),
        ]);
        await other.remove(['evt_snapshot_1', 'evt_snapshot_unknown']);
        expect(await h.store.list()).toEqual([entry(2, '2026-11-29T10:00:02.000Z')]);
        await h.store.remove([]);
        expect(await other.list()).toEqual([entry(2, '2026-11-29T10:00:02.000Z')]);
      } finally {
        await h.cleanup();
      }
    });
  });
}
