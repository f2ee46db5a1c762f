import path from 'node:path';
import { COMMIT_MODES, type CommitMode } from '../buffer/sqlite/store.js';
import { parseRedisTarget } from '../buffer/redis/url.js';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { EventOverrides } from '../catalog/catalog.js';
import { REDACTABLE, type RedactKind } from '../catalog/untrusted.js';
import { isLogLevel, type LogLevel } from '../logger.js';
import { loadConfigFile, type ConfigFile } from './file.js';
import { wholeNumber } from './numbers.js';
import { resolveModel } from './agent.js';
import { defaultDataDir, DATA_DIR_SETTING } from './data-dir.js';
import { loadStripeApiSettings, SECRET_KEY_SETTING } from '../stripe/client.js';
import { LIMIT_DEFAULTS, type ListenerLimits } from './limits.js';

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
  /** The listener's bounds (src/ingress/limits.ts): timeouts, connections, unverified bytes. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
  maxBodyMemoryBytes: number;
  maxPending: number;
  store: StoreKind;
  /** Where the Redis store lives (REDIS_URL); used with `store: 'redis'`. */
  redisUrl: string;
  /** Prefix of every Redis key and channel (--redis-prefix / REDIS_KEY_PREFIX). */
  redisPrefix: string;
  commitMode: CommitMode;
  logLevel: LogLevel;
  /** `events` of the --config file, applied to the default catalog. */
  catalogOverrides: EventOverrides;
  dispatch: NonNullable<ConfigFile['dispatch']>;
  approval: NonNullable<ConfigFile['approval']>;
  /** `notify` of the --config file: where people are told what waits (none: nobody is). */
  notify?: ConfigFile['notify'];
  /** `model` of the --config file: the loop's model unless --model or ANTHROPIC_MODEL is set. */
  model?: string;
  /**
   * The model the agent loop will use (`agent`, `serve --agent`), resolved as loadAgentConfig
   * does; undefined without the loop. The config's `pricing` and `budget` are checked against it
   * when the services are composed (the price list is the agent layer's, src/agent/pricing.ts).
   */
  agentModel?: string;
  /** The --config file's path as given, for errors that name it. */
  configFile?: string;
  /** The live loop's guardrails (--config `budget`, `limits`, `breaker`, `pricing`). */
  guardrails: Pick<ConfigFile, 'budget' | 'limits' | 'breaker' | 'pricing'>;
  /** Personal data replaced before any model sees it. */
  redact: readonly RedactKind[];
  /** The --config file's directory: a `module` dispatch path is relative to it. */
  configDir?: string;
  /** Bearer token `/mcp` requires (MCP_AUTH_TOKEN); null: none (allowed on loopback binds only). */
  mcpAuthToken: string | null;
  /** Extra Host names `/mcp` accepts (MCP_ALLOWED_HOSTS, comma-separated). */
  mcpAllowedHosts: readonly string[];
  /** Extra browser origins `/mcp` accepts (MCP_ALLOWED_ORIGINS, comma-separated). */
  mcpAllowedOrigins: readonly string[];
  /** An MCP HTTP session with nothing open and no request for this long is closed. */
  mcpSessionIdleMs: number;
  /** MCP HTTP sessions open at once; at the cap the least recently used idle one is closed. */
  mcpMaxSessions: number;
  /** STRIPE_SECRET_KEY (backfill); null when unset. Never logged or printed. */
  stripeSecretKey?: string | null;
  /** STRIPE_API_BASE: another Stripe API origin; null for api.stripe.com. */
  stripeApiBase?: string | null;
  /** Backfill from the Events API on start (default: on when STRIPE_SECRET_KEY is set). */
  backfillOnStart?: boolean;
  /** Backfill again this often while running; null: on start only. */
  backfillIntervalMs?: number | null;
  /** Look up facts events lack in the Stripe API before the agent decides (needs the key). */
  enrich?: boolean;
  /** `--events-allow-loopback`: MCP Events webhooks may call back to loopback (development). */
  eventsAllowLoopback?: boolean;
  /** Config file `mcp_events.allow_private_callbacks`: callbacks to private ranges allowed. */
  eventsAllowPrivate?: boolean;
  /** Config file `mcp_events.max_subscriptions`: webhook subscriptions per principal. */
  eventsMaxSubscriptions?: number;
  /**
   * `serve`/`agent --max-attempts`: stored as the queue's policy at start (every process on the
   * store follows it); undefined keeps the stored policy.
   */
  maxAttempts?: number;
  /**
   * Where people reach this server (--public-url / PUBLIC_URL), without a trailing slash: the
   * console links in notifications. Null: the address it listens on.
   */
  publicUrl?: string | null;
}

/** Raw values as commander hands them over (strings, or undefined when not given). */
export interface ServeFlags {
  host?: string;
  port?: string;
  dataDir?: string;
  tolerance?: string;
  maxBody?: string;
  headersTimeout?: string;
  requestTimeout?: string;
  maxConnections?: string;
  maxBodyMemory?: string;
  maxPending?: string;
  store?: string;
  redisPrefix?: string;
  commitMode?: string;
  logLevel?: string;
  config?: string;
  redact?: string;
  mcpIdleTimeout?: string;
  mcpMaxSessions?: string;
  /** --backfill-on-start (true) / --no-backfill-on-start (false); undefined: on with a key. */
  backfillOnStart?: boolean;
  backfillInterval?: string;
  enrich?: boolean;
  eventsAllowLoopback?: boolean;
  /** `serve` and `agent` only: the queue's attempt limit, stored with the queue. */
  maxAttempts?: string;
  /** `serve --agent` / `agent`: the loop runs, with this --model (if given). */
  agent?: boolean;
  model?: string;
  publicUrl?: string;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8000,
  toleranceSeconds: 300,
  maxBodyBytes: 2 * 1024 * 1024,
  maxPending: 100_000,
  mcpSessionIdleMs: 30 * 60 * 1000,
  mcpMaxSessions: 1000,
} as const;

/** Where `trigger` sends by default: the webhook route of a `serve` on the default address. */
export const DEFAULT_WEBHOOK_URL = `http://${DEFAULTS.host}:${DEFAULTS.port}/stripe/webhook`;

function pick(flag: string | undefined, env: string | undefined): string | undefined {
  return flag ?? (env === '' ? undefined : env);
}

function parseWith<T>(
  schema: z.ZodType<T, string>,
  value: string,
  setting: string,
  fix: string,
): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problem = result.error.issues[0]?.message ?? 'invalid value';
  throw new ConfigError(setting, `${JSON.stringify(value)} is not valid (${problem}). Fix: ${fix}`);
}

const portSchema = wholeNumber(0, 65535);

const positiveInt = wholeNumber(1);

/**
 * A signature older than this is stale. Stripe recommends 300 s; a day is plenty for a clock that
 * is far off, and a larger value would in effect turn the staleness check (replay protection) off.
 */
export const MAX_TOLERANCE_SECONDS = 86_400;

const toleranceSchema = wholeNumber(1, MAX_TOLERANCE_SECONDS);

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
  secrets.forEach((secret, i) => {
    // A placeholder copied from mcp.json.example or the docs verifies nothing and refuses every
    // real event: say so at start, not as a stream of 400s once Stripe starts sending.
    const placeholder = PLACEHOLDER.exec(secret);
    if (placeholder) {
      // Only the matched fragment is shown: even a placeholder is never printed whole.
      throw new ConfigError(
        'STRIPE_WEBHOOK_SECRET',
        `item ${i + 1} is a placeholder (it contains ${JSON.stringify(placeholder[0])}), not a webhook signing secret. Fix: paste your endpoint's signing secret (Dashboard → Webhooks, or the one \`stripe listen\` prints), or leave STRIPE_WEBHOOK_SECRET unset to use a dev secret.`,
      );
    }
  });
  return secrets;
}

/**
 * What the examples' placeholders look like (`whsec_replace_with_your_endpoint_secret`, `whsec_…`):
 * words and punctuation a real secret, random base64 letters and digits, never holds.
 */
const PLACEHOLDER = /replace_with|your_|example|placeholder|changeme|\.\.\.|…|<|>/i;

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
          toleranceSchema,
          flags.tolerance,
          '--tolerance',
          `give the accepted signature age in whole seconds, from 1 to ${MAX_TOLERANCE_SECONDS} (Stripe recommends 300).`,
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
  const limits = loadListenerLimits(flags, maxBodyBytes);
  const maxPending =
    flags.maxPending === undefined
      ? DEFAULTS.maxPending
      : parseWith(
          positiveInt,
          flags.maxPending,
          '--max-pending',
          'give the most pending events to hold, e.g. --max-pending 100000.',
        );
  const { store, redisUrl, redisPrefix } = loadStoreSettings(flags, env);
  const commitMode = flags.commitMode ?? 'group';
  if (!(COMMIT_MODES as readonly string[]).includes(commitMode)) {
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
  const mcpSessionIdleMs =
    flags.mcpIdleTimeout === undefined
      ? DEFAULTS.mcpSessionIdleMs
      : parseWith(
          positiveInt,
          flags.mcpIdleTimeout,
          '--mcp-idle-timeout',
          'give the idle time in seconds after which an MCP HTTP session is closed, e.g. 1800.',
        ) * 1000;
  const mcpMaxSessions =
    flags.mcpMaxSessions === undefined
      ? DEFAULTS.mcpMaxSessions
      : parseWith(
          wholeNumber(1, 100_000),
          flags.mcpMaxSessions,
          '--mcp-max-sessions',
          'give how many MCP HTTP sessions may be open at once (1 to 100000; each takes about 80 KB), e.g. 1000.',
        );
  const file = flags.config ? loadConfigFile(flags.config) : {};
  const stripeApi = loadStripeApiSettings(env);
  if (flags.backfillOnStart === true && !stripeApi.secretKey) {
    throw new ConfigError(
      SECRET_KEY_SETTING,
      'is not set, and --backfill-on-start needs it to read the Events API. Fix: export STRIPE_SECRET_KEY=sk_test_…, or drop --backfill-on-start.',
    );
  }
  const backfillOnStart = flags.backfillOnStart ?? stripeApi.secretKey !== null;
  if (flags.enrich === true && !stripeApi.secretKey) {
    throw new ConfigError(
      SECRET_KEY_SETTING,
      'is not set, and --enrich needs it to look objects up. Fix: export STRIPE_SECRET_KEY=sk_test_… (a restricted key with read access to charges and customers is enough), or drop --enrich.',
    );
  }
  const backfillIntervalMs =
    flags.backfillInterval === undefined
      ? null
      : parseWith(
          positiveInt,
          flags.backfillInterval,
          '--backfill-interval',
          'give the minutes between backfills while running, e.g. --backfill-interval 60.',
        ) *
        60 *
        1000;
  const maxAttempts =
    flags.maxAttempts === undefined
      ? undefined
      : parseWith(
          wholeNumber(1, 100),
          flags.maxAttempts,
          '--max-attempts',
          'failed attempts before an event is dead, from 1 to 100, e.g. --max-attempts 5.',
        );
  return Object.freeze({
    host,
    port,
    dataDir,
    webhookSecrets: Object.freeze(parseSecrets(env.STRIPE_WEBHOOK_SECRET)),
    toleranceSeconds,
    maxBodyBytes,
    ...limits,
    maxPending,
    store,
    redisUrl,
    redisPrefix,
    commitMode: commitMode as CommitMode,
    logLevel,
    catalogOverrides: file.events ?? {},
    dispatch: file.dispatch ?? { type: 'record' as const },
    approval: file.approval ?? {},
    notify: file.notify,
    model: file.model,
    agentModel: flags.agent ? resolveModel(flags.model, env, file.model) : undefined,
    configFile: flags.config,
    guardrails: {
      budget: file.budget,
      limits: file.limits,
      breaker: file.breaker,
      pricing: file.pricing,
    },
    redact: parseRedact(flags.redact),
    configDir: flags.config ? path.dirname(path.resolve(flags.config)) : undefined,
    mcpAuthToken: pick(undefined, env.MCP_AUTH_TOKEN)?.trim() || null,
    mcpAllowedHosts: Object.freeze(parseList(env.MCP_ALLOWED_HOSTS)),
    mcpAllowedOrigins: Object.freeze(parseList(env.MCP_ALLOWED_ORIGINS)),
    mcpSessionIdleMs,
    mcpMaxSessions,
    stripeSecretKey: stripeApi.secretKey,
    stripeApiBase: stripeApi.apiBase,
    backfillOnStart,
    enrich: flags.enrich === true,
    eventsAllowLoopback: flags.eventsAllowLoopback === true,
    eventsAllowPrivate: file.mcp_events?.allow_private_callbacks === true,
    eventsMaxSubscriptions: file.mcp_events?.max_subscriptions,
    backfillIntervalMs,
    maxAttempts,
    publicUrl: parsePublicUrl(pick(flags.publicUrl, env.PUBLIC_URL)),
  });
}

/**
 * --public-url / PUBLIC_URL: an http(s) origin with an optional path, no credentials, query or
 * fragment (it is put into messages people read, so nothing in it may be a secret), and none of
 * the characters a Slack link cannot hold.
 */
export function parsePublicUrl(raw: string | undefined): string | null {
  if (raw === undefined || raw.trim() === '') return null;
  const setting = '--public-url / PUBLIC_URL';
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(
      setting,
      `is not a URL. Fix: e.g. --public-url https://events.example.com.`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(
      setting,
      `must be an http(s) URL. Fix: e.g. --public-url https://events.example.com.`,
    );
  }
  if (url.username || url.password || url.search || url.hash || /[|<>]/.test(raw)) {
    throw new ConfigError(
      setting,
      'must be a plain address: no user or password, query, fragment, or |, < and > (it is shown in notifications). Fix: e.g. --public-url https://events.example.com/stripe.',
    );
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/** --headers-timeout, --request-timeout, --max-connections, --max-body-memory. */
function loadListenerLimits(flags: ServeFlags, maxBodyBytes: number): ListenerLimits {
  const seconds = (value: string | undefined, fallbackMs: number, setting: string, fix: string) =>
    value === undefined ? fallbackMs : parseWith(wholeNumber(1, 3600), value, setting, fix) * 1000;
  let headersTimeoutMs = seconds(
    flags.headersTimeout,
    LIMIT_DEFAULTS.headersTimeoutMs,
    '--headers-timeout',
    'give the seconds a client has to send its request headers, e.g. --headers-timeout 10.',
  );
  const requestTimeoutMs = seconds(
    flags.requestTimeout,
    LIMIT_DEFAULTS.requestTimeoutMs,
    '--request-timeout',
    'give the seconds a client has to send its whole request, e.g. --request-timeout 30 (Stripe itself gives up after 30).',
  );
  // The default gives way to a shorter --request-timeout; a --headers-timeout given must fit.
  if (flags.headersTimeout === undefined) {
    headersTimeoutMs = Math.min(headersTimeoutMs, requestTimeoutMs);
  } else if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(
      '--headers-timeout',
      `${headersTimeoutMs / 1000} s is longer than --request-timeout (${requestTimeoutMs / 1000} s), which covers the headers too. Fix: give a --headers-timeout no longer than --request-timeout.`,
    );
  }
  const maxConnections =
    flags.maxConnections === undefined
      ? LIMIT_DEFAULTS.maxConnections
      : parseWith(
          wholeNumber(1, 1_000_000),
          flags.maxConnections,
          '--max-connections',
          'give the most HTTP connections open at once, e.g. --max-connections 1024.',
        );
  let maxBodyMemoryBytes = Math.max(LIMIT_DEFAULTS.maxBodyMemoryBytes, maxBodyBytes);
  if (flags.maxBodyMemory !== undefined) {
    const size = parseSize(flags.maxBodyMemory);
    if (size === null || size < maxBodyBytes) {
      throw new ConfigError(
        '--max-body-memory',
        `${JSON.stringify(flags.maxBodyMemory)} is not a size of at least --max-body (${maxBodyBytes} bytes). Fix: e.g. --max-body-memory 64mb.`,
      );
    }
    maxBodyMemoryBytes = size;
  }
  return { headersTimeoutMs, requestTimeoutMs, maxConnections, maxBodyMemoryBytes };
}

export type StoreKind = 'sqlite' | 'redis';

export interface StoreSettings {
  store: StoreKind;
  redisUrl: string;
  redisPrefix: string;
}

export const STORE_DEFAULTS = {
  redisUrl: 'redis://127.0.0.1:6379',
  redisPrefix: 'stripe-events:',
} as const;

/**
 * `--store`, `REDIS_URL` and `--redis-prefix` / `REDIS_KEY_PREFIX`, shared by `serve` and the
 * `events` commands. The Redis settings are checked only when the store is Redis.
 */
export function loadStoreSettings(
  flags: { store?: string; redisPrefix?: string },
  env: NodeJS.ProcessEnv = process.env,
): StoreSettings {
  const store = flags.store ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'redis') {
    throw new ConfigError(
      '--store',
      `${JSON.stringify(store)} is not a store. Fix: use --store sqlite (the default, one instance) or --store redis (several instances sharing one Redis).`,
    );
  }
  const redisUrl = pick(undefined, env.REDIS_URL)?.trim() || STORE_DEFAULTS.redisUrl;
  const redisPrefix = pick(flags.redisPrefix, env.REDIS_KEY_PREFIX) ?? STORE_DEFAULTS.redisPrefix;
  if (store === 'redis') {
    checkRedisUrl(redisUrl);
    if (!/^[\x21-\x7e]{1,100}$/.test(redisPrefix)) {
      throw new ConfigError(
        '--redis-prefix / REDIS_KEY_PREFIX',
        `${JSON.stringify(redisPrefix)} is not a usable key prefix (1 to 100 visible ASCII characters, no spaces). Fix: e.g. --redis-prefix stripe-events:prod: (every instance of one deployment uses the same prefix).`,
      );
    }
  }
  return { store, redisUrl, redisPrefix };
}

function checkRedisUrl(raw: string): void {
  if (parseRedisTarget(raw)) return;
  // The value may carry a password: show only its scheme, never the whole text.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1];
  const shown = scheme ? `a URL with the scheme ${scheme}:` : 'not a URL';
  throw new ConfigError(
    'REDIS_URL',
    `is ${shown}, not a Redis URL. Fix: set it like redis://127.0.0.1:6379, rediss://user:password@host:6380/0, or for Sentinel redis+sentinel://:password@sentinel1:26379,sentinel2:26379/mymaster.`,
  );
}

/** A comma-separated variable as a list, empty items dropped. */
function parseList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
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
