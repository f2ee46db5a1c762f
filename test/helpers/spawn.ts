import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file (test/helpers/spawn.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built CLI; `npm test` builds it first. */
export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

/** Generous: a loaded 2-core CI box can take seconds to start node and open SQLite. */
export const DEADLINE_MS = 20_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Extra environment; `undefined` removes a variable. */
export type EnvOverrides = Record<string, string | undefined>;

// Settings the CLI reads from the environment: a developer's shell must not leak into a test.
const SCRUBBED = [
  'STRIPE_WEBHOOK_SECRET',
  'STRIPE_SECRET_KEY',
  'STRIPE_API_BASE',
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_BASE_URL',
  'ANTHROPIC_MODEL',
  'MCP_AUTH_TOKEN',
  'STRIPE_EVENTS_TOKEN',
  'STRIPE_EVENTS_DATA_DIR',
  'PORT',
  'HOST',
  'LOG_LEVEL',
  'NODE_OPTIONS',
];

/** The environment for a CLI child: no secret, no data dir, LOG_LEVEL=info, then `overrides`. */
export function cliEnv(overrides: EnvOverrides = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SCRUBBED) delete env[name];
  env.LOG_LEVEL = 'info';
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

const live = new Set<ChildProcess>();

function track(child: ChildProcess): void {
  live.add(child);
  child.once('close', () => live.delete(child));
}

/** SIGKILLs every child a test left running and waits for them; call it in afterEach. */
export async function killLeftovers(): Promise<void> {
  const children = [...live];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            live.delete(child);
            resolve();
            return;
          }
          const timer = setTimeout(resolve, DEADLINE_MS);
          child.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGKILL');
        }),
    ),
  );
  live.clear();
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    // 'close', not 'exit': by then stdout and stderr are fully read.
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: EnvOverrides;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs `node dist/cli.js ...args` to completion. Pass a temp `--data-dir` in `args`. */
export async function runCli(
  args: readonly string[],
  options: RunOptions = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exit = await exitOf(child);
  clearTimeout(timer);
  if (timedOut) {
    throw new Error(
      `stripe-events-mcp ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`,
    );
  }
  return { ...exit, stdout, stderr };
}

export interface ServeOptions {
  dataDir: string;
  env?: EnvOverrides;
  args?: readonly string[];
}

export interface ServeHandle {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** `${url}/stripe/webhook` */
  webhookUrl: string;
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** The JSON log lines on stderr so far (the dev-secret banner and other text are skipped). */
  logs(): Record<string, unknown>[];
  /** Sends `signal` (SIGTERM by default) and resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  exited: Promise<Exit>;
}

/** The JSON objects among `text`'s lines. */
export function jsonLines(text: string): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        records.push(value as Record<string, unknown>);
      }
    } catch {
      // a partial line or non-JSON text
    }
  }
  return records;
}

/**
 * Spawns `node dist/cli.js serve --port 0 --data-dir <dataDir> ...args` and resolves once its
 * "listening" log line names the URL the OS picked.
 */
export async function startServe(options: ServeOptions): Promise<ServeHandle> {
  const args = [
    CLI,
    'serve',
    '--port',
    '0',
    '--data-dir',
    options.dataDir,
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const exited = exitOf(child);

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not log "listening" within ${DEADLINE_MS} ms\n${stderr}`));
    }, DEADLINE_MS);
    let found = false;
    const onData = (chunk: string) => {
      stderr += chunk;
      if (found) return;
      const listening = jsonLines(stderr).find((r) => r.msg === 'listening');
      if (listening && typeof listening.url === 'string') {
        found = true;
        clearTimeout(timer);
        resolve(listening.url);
      }
    };
    child.stderr?.setEncoding('utf8').on('data', onData);
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(
        new Error(
          `serve exited (${exit.code ?? exit.signal}) before listening\nstderr:\n${stderr}`,
        ),
      );
    });
  });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`serve did not exit within ${DEADLINE_MS} ms of ${signal}`)),
        DEADLINE_MS,
      );
    });
    try {
      return await Promise.race([exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    url,
    webhookUrl: `${url}/stripe/webhook`,
    child,
    stderr: () => stderr,
    stdout: () => stdout,
    logs: () => jsonLines(stderr),
    stop,
    exited,
  };
}

/** Polls `check` until it returns a value other than undefined/false, or throws at the deadline. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  deadlineMs = DEADLINE_MS,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Mode bits of a file (e.g. 0o600). */
export function fileMode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}
