import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { EventOverrides } from '../catalog/catalog.js';
import { REDACTABLE, type RedactKind } from '../catalog/untrusted.js';
import { isLogLevel, type LogLevel } from '../logger.js';
import { loadConfigFile, type ConfigFile } from './file.js';
import { defaultDataDir, DATA_DIR_SETTING } from './data-dir.js';

/**
 * Settings come from defaults < environment < flags; each is validated once here, and a bad one
 * becomes a ConfigError naming the flag and variable to fix (exit code 2).
 */
export interface ServeConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Empty when none is configured: serve then uses the data dir's dev secret. */
  webhookSecrets: readonly string[];
  toleranceSeconds: number;
  maxBodyBytes: number;
  maxPending: number;
  store: 'sqlite';
  commitMode: 'group' | 'each';
  logLevel: LogLevel;
  /** `events` of the --config file, applied to the default catalog. */
  catalogOverrides: EventOverrides;
  dispatch: NonNullable<ConfigFile['dispatch']>;
  approval: NonNullable<ConfigFile['approval']>;
  /** Personal data replaced before any model sees it. */
  redact: readonly RedactKind[];
}

/** Raw values as commander hands them over (strings, or undefined when not given). */
export interface ServeFlags {
  host?: string;
  port?: string;
  dataDir?: string;
  tolerance?: string;
  maxBody?: string;
  maxPending?: string;
  store?: string;
  commitMode?: string;
  logLevel?: string;
  config?: string;
  redact?: string;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8000,
  toleranceSeconds: 300,
  maxBodyBytes: 2 * 1024 * 1024,
  maxPending: 100_000,
} as const;

function pick(flag: string | undefined, env: string | undefined): string | undefined {
  return flag ?? (env === '' ? undefined : env);
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, setting: string, fix: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problem = result.error.issues[0]?.message ?? 'invalid value';
  throw new ConfigError(setting, `${JSON.stringify(value)} is not valid (${problem}). Fix: ${fix}`);
}

const portSchema = z.coerce
  .number({ error: 'not a number' })
  .int('not a whole number')
  .min(0, 'below 0')
  .max(65535, 'above 65535');

const positiveInt = z.coerce
  .number({ error: 'not a number' })
  .int('not a whole number')
  .min(1, 'below 1');

export function parseSize(text: string): number | null {
  const m = /^\s*(\d+)\s*(b|kb|kib|mb|mib)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase();
  const factor = unit === 'b' ? 1 : unit.startsWith('k') ? 1024 : 1024 * 1024;
  return Number(m[1]) * factor;
}

/** Parses `STRIPE_WEBHOOK_SECRET`: one or more `whsec_…`, comma-separated. */
export function parseSecrets(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const secrets = raw.split(',').map((s) => s.trim());
  secrets.forEach((secret, i) => {
    if (!/^whsec_\S+$/.test(secret)) {
      const shown =
        secret === '' ? 'an empty value' : `a value starting ${JSON.stringify(secret.slice(0, 6))}`;
      throw new ConfigError(
        'STRIPE_WEBHOOK_SECRET',
        `item ${i + 1} is ${shown}, not a webhook signing secret. Fix: use the endpoint's signing secret, which starts with whsec_ (Dashboard → Webhooks, or the one \`stripe listen\` prints); separate several with commas.`,
      );
    }
  });
  return secrets;
}

export function loadServeConfig(
  flags: ServeFlags,
  env: NodeJS.ProcessEnv = process.env,
): ServeConfig {
  const host = pick(flags.host, env.HOST) ?? DEFAULTS.host;
  const portText = pick(flags.port, env.PORT);
  const port =
    portText === undefined
      ? DEFAULTS.port
      : parseWith(
          portSchema,
          portText,
          '--port / PORT',
          'give a whole number from 0 to 65535, e.g. --port 8000.',
        );
  const dataDir = pick(flags.dataDir, env.STRIPE_EVENTS_DATA_DIR) ?? defaultDataDir(env);
  if (dataDir.trim() === '') {
    throw new ConfigError(
      DATA_DIR_SETTING,
      'is empty. Fix: give a directory path or leave it unset.',
    );
  }
  const toleranceSeconds =
    flags.tolerance === undefined
      ? DEFAULTS.toleranceSeconds
      : parseWith(
          positiveInt,
          flags.tolerance,
          '--tolerance',
          'give the accepted signature age in seconds (at least 1; Stripe recommends 300).',
        );
  let maxBodyBytes: number = DEFAULTS.maxBodyBytes;
  if (flags.maxBody !== undefined) {
    const size = parseSize(flags.maxBody);
    if (size === null || size < 1024) {
      throw new ConfigError(
        '--max-body',
        `${JSON.stringify(flags.maxBody)} is not a size of at least 1kb. Fix: e.g. --max-body 2mb.`,
      );
    }
    maxBodyBytes = size;
  }
  const maxPending =
    flags.maxPending === undefined
      ? DEFAULTS.maxPending
      : parseWith(
          positiveInt,
          flags.maxPending,
          '--max-pending',
          'give the most pending events to hold, e.g. --max-pending 100000.',
        );
  const store = flags.store ?? 'sqlite';
  if (store !== 'sqlite') {
    throw new ConfigError(
      '--store',
      store === 'redis'
        ? 'the Redis store is not in this version yet. Fix: use --store sqlite (the default).'
        : `${JSON.stringify(store)} is not a store. Fix: use --store sqlite.`,
    );
  }
  const commitMode = flags.commitMode ?? 'group';
  if (commitMode !== 'group' && commitMode !== 'each') {
    throw new ConfigError(
      '--commit-mode',
      `${JSON.stringify(commitMode)} is not a commit mode. Fix: use group (default) or each.`,
    );
  }
  const logLevel = pick(flags.logLevel, env.LOG_LEVEL) ?? 'info';
  if (!isLogLevel(logLevel)) {
    throw new ConfigError(
      '--log-level / LOG_LEVEL',
      `${JSON.stringify(logLevel)} is not a level. Fix: use debug, info, warn, error or silent.`,
    );
  }
  const file = flags.config ? loadConfigFile(flags.config) : {};
  return Object.freeze({
    host,
    port,
    dataDir,
    webhookSecrets: Object.freeze(parseSecrets(env.STRIPE_WEBHOOK_SECRET)),
    toleranceSeconds,
    maxBodyBytes,
    maxPending,
    store,
    commitMode,
    logLevel,
    catalogOverrides: file.events ?? {},
    dispatch: file.dispatch ?? { type: 'record' as const },
    approval: file.approval ?? {},
    redact: parseRedact(flags.redact),
  });
}

export function parseRedact(raw: string | undefined): RedactKind[] {
  if (raw === undefined || raw.trim() === '') return [];
  const kinds = raw.split(',').map((k) => k.trim());
  for (const kind of kinds) {
    if (!(REDACTABLE as readonly string[]).includes(kind)) {
      throw new ConfigError(
        '--redact',
        `${JSON.stringify(kind)} is not redactable. Fix: use a comma-separated list of ${REDACTABLE.join(', ')}.`,
      );
    }
  }
  return kinds as RedactKind[];
}
