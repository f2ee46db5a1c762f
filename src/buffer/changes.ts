import type { BufferChange, ChangeListener, HistoryEntry } from './buffer.js';

/** The change each history entry announces (decisions and notes change no state). */
export const CHANGE_OF: Partial<Record<HistoryEntry['kind'], BufferChange['kind']>> = {
  claimed: 'claimed',
  released: 'released',
  lease_expired: 'released',
  acked: 'acked',
  nacked: 'nacked',
  dead: 'dead',
  replayed: 'replayed',
  held: 'held',
  resumed: 'claimed',
};

/** Fan-out of committed changes to watchers; a throwing watcher never breaks a write. */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  get size(): number {
    return this.listeners.size;
  }

  add(listener: ChangeListener, onEmpty?: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) onEmpty?.();
    };
  }

  emit(change: BufferChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A watcher's bug is its own; the change is already committed.
      }
    }
  }
}
