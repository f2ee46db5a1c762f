import type { Redis } from 'ioredis';
import type { BufferChange } from '../buffer.js';
import type { ChangeFeed } from '../changes.js';

/**
 * The Redis store's changes, told to its watchers: this instance's own as they commit (the message
 * the script also published), and other instances' from the `<prefix>changes` channel, with the
 * same kinds, ids and types. Pub/sub is at-most-once: after the subscriber reconnects, one
 * `external` change says that something may have been missed, so watchers re-read what they show.
 */
export class RedisChanges {
  private subscriber: Redis | undefined;

  /** `client`: the store's connection, duplicated for the subscription. */
  constructor(
    private readonly client: Redis,
    private readonly channel: string,
    private readonly instanceId: string,
    private readonly feed: ChangeFeed,
  ) {}

  /** Subscribed (or subscribing) to the channel. */
  get started(): boolean {
    return this.subscriber !== undefined;
  }

  start(): void {
    // Its own connection (a subscribed connection can do nothing else), and an offline queue so
    // the SUBSCRIBE waits for the connection; ioredis subscribes again after each reconnect.
    const subscriber = this.client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      enableAutoPipelining: false,
      connectionName: 'stripe-events-mcp:watch',
    });
    this.subscriber = subscriber;
    let readyBefore = false;
    subscriber.on('error', () => {
      // Reconnection is automatic; health() reports the main connection.
    });
    subscriber.on('ready', () => {
      if (readyBefore && this.subscriber === subscriber) this.feed.emit({ kind: 'external' });
      readyBefore = true;
    });
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    subscriber.subscribe(this.channel).catch(() => {
      // Retried by autoResubscribe on the next connection.
    });
  }

  stop(): void {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    subscriber?.disconnect();
  }

  /** Drops the subscriber's connection so that it reconnects (and then tells of `external`). */
  reconnect(): void {
    this.subscriber?.disconnect(true);
  }

  /** Emits this instance's own committed changes (the message the script also published). */
  announce(message: string): void {
    if (message === '' || this.feed.size === 0) return;
    try {
      const parsed = JSON.parse(message) as { changes: BufferChange[] };
      for (const change of parsed.changes) this.feed.emit(toChange(change));
    } catch {
      // Never: the script encoded it.
    }
  }

  private onMessage(message: string): void {
    let parsed: { from?: unknown; changes?: unknown };
    try {
      parsed = JSON.parse(message) as { from?: unknown; changes?: unknown };
    } catch {
      return;
    }
    // Our own changes were announced when they committed.
    if (parsed.from === this.instanceId || !Array.isArray(parsed.changes)) return;
    for (const change of parsed.changes as BufferChange[]) {
      this.feed.emit({ ...toChange(change), remote: true });
    }
  }
}

function toChange(change: BufferChange): BufferChange {
  const out: BufferChange = { kind: change.kind };
  if (typeof change.id === 'string') out.id = change.id;
  if (typeof change.type === 'string') out.type = change.type;
  return out;
}
