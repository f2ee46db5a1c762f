import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';

/** The machine's Redis (CI starts one on 6379 when none answers); REDIS_URL overrides. */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** In CI a missing Redis fails the Redis tests; on a developer machine they are skipped. */
export const IN_CI = Boolean(process.env.CI);

/** A client that gives up at once instead of reconnecting: for probes and test bookkeeping. */
export function plainClient(url = REDIS_URL): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
}

/** Whether Redis answers PING at `url` within a couple of seconds. */
export async function redisAnswers(url = REDIS_URL): Promise<boolean> {
  const client = plainClient(url);
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** A key prefix no other test run uses, so runs can share the machine's Redis. */
export function uniquePrefix(label = 'test'): string {
  return `sem-${label}:${process.pid}-${crypto.randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix` (test prefixes hold no glob characters). */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<number> {
  const client = plainClient(url);
  client.on('error', () => {});
  let deleted = 0;
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return deleted;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const privateServers = new Set<ChildProcess>();
// A test run that dies must not leave its redis-server behind.
process.once('exit', () => {
  for (const child of privateServers) child.kill('SIGKILL');
});

export interface PrivateRedis {
  url: string;
  port: number;
  /** Starts redis-server (again, on the same port and directory) and waits for PING. */
  start(): Promise<void>;
  /** SIGKILLs it (no chance to save anything more) and waits until it is gone. */
  kill(): Promise<void>;
  /**
   * SIGSTOPs it: its sockets stay open and the kernel still accepts bytes, but nothing answers
   * (what a hung or swapped-out Redis looks like to a client). `thaw` SIGCONTs it.
   */
  freeze(): void;
  thaw(): void;
}

/**
 * A redis-server of the test's own on a random free port, with an append-only file fsynced on
 * every write, in `dir`: killing and restarting it never touches the machine's shared Redis.
 */
export async function privateRedis(
  dir: string,
  options: { args?: string[]; port?: number; config?: string } = {},
): Promise<PrivateRedis> {
  const port = options.port ?? (await freePort());
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let output = '';
  const start = async () => {
    output = '';
    child = spawn(
      'redis-server',
      [
        // A config file first when given (Sentinel needs one it can rewrite).
        ...(options.config ? [options.config] : []),
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        dir,
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const proc = child;
    privateServers.add(proc);
    exited = new Promise((resolve) =>
      proc.once('exit', () => {
        privateServers.delete(proc);
        resolve();
      }),
    );
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const deadline = Date.now() + 20_000;
    while (!(await redisAnswers(url))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`redis-server on port ${port} did not start:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const signal = (name: NodeJS.Signals) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on port ${port} is not running`);
    }
    child.kill(name);
  };
  await start();
  return { url, port, start, kill, freeze: () => signal('SIGSTOP'), thaw: () => signal('SIGCONT') };
}

export interface RedisGate {
  /** Something answers at REDIS_URL. */
  available: boolean;
  /** Run the Redis tests: Redis answers, or this is CI (where they must run, and fail loudly). */
  run: boolean;
  /** Tests that start their own redis-server can: the binary is here, or this is CI. */
  canSpawn: boolean;
  /** Appended to a skipped suite's title, saying why it skipped. */
  skipNote: string;
}

/** Whether (and which) Redis tests run here; every Redis test file asks the same way. */
export async function redisGate(): Promise<RedisGate> {
  const available = await redisAnswers();
  const run = available || IN_CI;
  return {
    available,
    run,
    canSpawn: spawnSync('redis-server', ['--version']).status === 0 || IN_CI,
    skipNote: run
      ? ''
      : ` (skipped: nothing answers at ${REDIS_URL}; start Redis or set REDIS_URL)`,
  };
}
