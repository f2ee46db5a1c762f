import { Redis, type RedisOptions } from 'ioredis';
import { AppError, StoreUnavailableError } from '../../errors.js';
import { parseRedisTarget, redactRedisUrl } from './url.js';

/** What every command gets unless the options say otherwise (docs/GUIDE.md, docs/SCALING.md). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** Between reconnection attempts: quick at first, then once a second, forever. */
const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000);

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. */
  url: string;
  /** A command without an answer after this long fails (StoreUnavailableError). Default 5 s. */
  commandTimeoutMs?: number;
  /** How long opening waits for a first connection before giving up. Default 10 s. */
  connectTimeoutMs?: number;
  /** Told when the connection to Redis is lost and when it is back (for logs). */
  onConnectionChange?: (state: 'lost' | 'restored', detail: string) => void;
}

/**
 * The Redis store's connection: the client (a plain URL or Sentinel), its health, and `call()`,
 * which every command goes through. While Redis is unreachable every call fails at once with
 * StoreUnavailableError (no offline queue), and the client keeps reconnecting in the background;
 * when Redis is back, work resumes without a restart.
 */
export class RedisConnection {
  readonly client: Redis;
  /** The URL without its password, for logs and error messages. */
  readonly safeUrl: string;
  readonly commandTimeoutMs: number;
  private isClosed = false;
  private lastError: string | undefined;
  private connected = false;
  /** Counts connections that became ready: a timeout only drops the connection it happened on. */
  private generation = 0;
  /** Why we dropped the connection ourselves, for the "lost" log line. */
  private dropReason: string | undefined;

  /** `onDrop` is told when a connection is dropped after a timeout (see dropConnection). */
  constructor(
    options: RedisConnectionOptions,
    private readonly onDrop: () => void,
  ) {
    this.safeUrl = redactRedisUrl(options.url);
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const target = parseRedisTarget(options.url);
    if (!target) throw new StoreUnavailableError(`REDIS_URL ${this.safeUrl} is not a Redis URL`);
    this.client =
      target.kind === 'url'
        ? new Redis(target.url, this.clientOptions())
        : new Redis({
            ...this.clientOptions(),
            sentinels: target.sentinels,
            name: target.name,
            username: target.username,
            password: target.password,
            db: target.db,
            // Moves to the new primary when a Sentinel announces +switch-master, not only when
            // the old one drops the connection (it may accept writes for seconds after).
            failoverDetector: true,
          });
    this.client.on('error', (error: Error) => {
      this.lastError = error.message;
    });
    this.client.on('ready', () => {
      if (!this.connected && this.lastError !== undefined) {
        options.onConnectionChange?.('restored', `reconnected to Redis at ${this.safeUrl}`);
      }
      this.connected = true;
      this.generation += 1;
      this.lastError = undefined;
      this.dropReason = undefined;
    });
    this.client.on('close', () => {
      if (this.connected && !this.isClosed) {
        this.lastError ??= 'connection closed';
        options.onConnectionChange?.(
          'lost',
          this.dropReason
            ? `Redis at ${this.safeUrl} ${this.dropReason}: dropped the connection; reconnecting`
            : `lost the connection to Redis at ${this.safeUrl}; reconnecting`,
        );
      }
      this.connected = false;
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** From now on every call fails, and losing the connection is not reported. */
  markClosed(): void {
    this.isClosed = true;
  }

  private clientOptions(): RedisOptions {
    return {
      // Fail fast instead of queueing while disconnected: the webhook answers 503 + Retry-After
      // and Stripe delivers again later. Commands in flight when the connection drops fail too.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // ioredis starts this clock only when a command is written, and auto-pipelining writes a
      // batch only after the previous batch answered: call() keeps its own deadline from the
      // moment it is called. This one still ends commands ioredis wrote and Redis never answered.
      commandTimeout: this.commandTimeoutMs,
      connectTimeout: 2_000,
      // TCP keepalive probes after 30 s idle (ioredis's default leaves the OS's two hours): the
      // watch connection only listens, so a peer or NAT that dropped it silently would otherwise
      // go unnoticed, and no change announced, for hours. The subscriber inherits this.
      keepAlive: 30_000,
      retryStrategy,
      // After a failover a client may still talk to the demoted primary: reconnect.
      reconnectOnError: (error) => error.message.startsWith('READONLY'),
      // Concurrent webhook deliveries share one write to the socket.
      enableAutoPipelining: true,
      connectionName: 'stripe-events-mcp',
    };
  }

  waitReady(timeoutMs: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new StoreUnavailableError(
            `cannot reach Redis at ${this.safeUrl} (${this.lastError ?? 'no answer'}) within ${timeoutMs / 1000} s. Fix: start Redis or set REDIS_URL to where it runs.`,
          ),
        );
      }, timeoutMs);
      const onReady = () => {
        cleanup();
        resolve();
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
      };
      this.client.on('ready', onReady);
    });
  }

  /**
   * Every command goes through here: it fails at once while the connection is not ready, and
   * within commandTimeoutMs of being called otherwise, whatever ioredis does with it (a command
   * queued behind an unanswered auto-pipelined batch would otherwise wait for that batch's
   * timeout before its own clock starts: 10 s instead of 5). A timeout means this connection is
   * presumed dead (a frozen or partitioned Redis keeps the TCP connection open): it is dropped,
   * so the commands stuck on it fail, and the calls that follow fail at once until a new
   * connection is ready, instead of each waiting out its own timeout.
   */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.isClosed) throw closedError();
    if (!this.usable()) throw new StoreUnavailableError(this.unreachable());
    const generation = this.generation;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CommandTimeout()), this.commandTimeoutMs);
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (error) {
      if (error instanceof CommandTimeout || isIoredisTimeout(error)) {
        const why = `did not answer within ${this.commandTimeoutMs / 1000} s`;
        this.dropConnection(generation, why);
        throw new StoreUnavailableError(`Redis at ${this.safeUrl} ${why}; reconnecting`, {
          cause: error,
        });
      }
      throw storeError(error, this.safeUrl);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ready, and not being dropped after a timeout (its socket may take a moment to close). */
  usable(): boolean {
    return this.client.status === 'ready' && this.dropReason === undefined;
  }

  /** Drops the connection a timed-out command was sent on (once), so ioredis reconnects. */
  private dropConnection(generation: number, why: string): void {
    if (this.isClosed || generation !== this.generation || this.client.status !== 'ready') return;
    if (this.dropReason !== undefined) return;
    this.dropReason = why;
    this.lastError = `no answer within ${this.commandTimeoutMs / 1000} s`;
    // disconnect(true) ends the socket (destroyed after disconnectTimeout when the other side
    // never answers the FIN); from then on the stream is not writable and calls fail at once.
    this.client.disconnect(true);
    // The change subscription rode the same Redis: start it over too. Once it is back, its
    // reconnection tells watchers that changes may have been missed (an `external` change).
    this.onDrop();
  }

  unreachable(): string {
    const why = this.lastError ?? this.client.status;
    return `Redis at ${this.safeUrl} is unreachable (${why}); reconnecting`;
  }

  /** Ends the connection, after the answers to every command already sent when it is ready. */
  async quit(): Promise<void> {
    if (this.client.status === 'ready') {
      // QUIT goes after every command already sent, so their answers still arrive.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.client.quit().catch(() => undefined),
        new Promise((resolve) => (timer = setTimeout(resolve, 5_000))),
      ]);
      clearTimeout(timer);
    }
    this.client.disconnect();
  }
}

/** call()'s own deadline passed. */
class CommandTimeout extends Error {
  constructor() {
    super('Command timed out');
  }
}

/** ioredis's commandTimeout rejected the command (its message, the only mark it has). */
function isIoredisTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

export function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the event store is closed');
}

export function storeError(error: unknown, safeUrl: string): AppError {
  if (error instanceof AppError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(`Redis at ${safeUrl} failed: ${detail}`, { cause: error });
}
