import type { ServerResponse } from 'node:http';
import type { BufferChange, ChangeListener } from '../buffer/buffer.js';

export const MAX_LIVE_CLIENTS = 64;
/** Changes queued per client before they collapse into one "refresh everything". */
const MAX_QUEUED = 32;
/** A client whose socket holds this much unsent data is too slow: it is dropped (it reconnects). */
const MAX_UNSENT_BYTES = 256 * 1024;
const FLUSH_MS = 150;
const HEARTBEAT_MS = 25_000;

interface Client {
  res: ServerResponse;
  queue: Pick<BufferChange, 'kind' | 'id' | 'type'>[];
  overflow: boolean;
}

/**
 * The console's server-sent events: the store's change feed fanned out to open consoles. Bounded
 * twice — at most MAX_LIVE_CLIENTS streams, and per stream at most MAX_QUEUED changes between
 * flushes (beyond that one `resync` replaces them) — so a burst of webhooks or a stalled browser
 * costs a fixed amount of memory. Watches the store only while someone is looking.
 */
export class LiveFeed {
  private readonly clients = new Set<Client>();
  private unwatch: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly watch: (listener: ChangeListener) => () => void,
    private readonly max = MAX_LIVE_CLIENTS,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Starts a stream on `res`; false (nothing written) when the limit is reached. */
  open(res: ServerResponse): boolean {
    if (this.clients.size >= this.max) return false;
    const client: Client = { res, queue: [], overflow: false };
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    this.clients.add(client);
    res.on('close', () => this.drop(client));
    if (!this.unwatch) this.unwatch = this.watch((change) => this.push(change));
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => {
        for (const c of this.clients) c.res.write(': keep-alive\n\n');
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
    }
    return true;
  }

  close(): void {
    for (const client of [...this.clients]) client.res.end();
    this.clients.clear();
    this.stop();
  }

  private drop(client: Client): void {
    this.clients.delete(client);
    if (this.clients.size === 0) this.stop();
  }

  private stop(): void {
    this.unwatch?.();
    this.unwatch = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private push(change: BufferChange): void {
    for (const client of this.clients) {
      if (client.overflow) continue;
      if (client.queue.length >= MAX_QUEUED) {
        client.queue = [];
        client.overflow = true;
      } else client.queue.push({ kind: change.kind, id: change.id, type: change.type });
    }
    // Batched: a burst of changes is one write per client, one refresh per console.
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.timer = null;
    for (const client of [...this.clients]) {
      if (client.res.writableLength > MAX_UNSENT_BYTES) {
        client.res.destroy();
        this.drop(client);
        continue;
      }
      const changes = client.overflow ? [{ kind: 'resync' }] : client.queue;
      client.queue = [];
      client.overflow = false;
      if (changes.length > 0) client.res.write(`data: ${JSON.stringify(changes)}\n\n`);
    }
  }
}
