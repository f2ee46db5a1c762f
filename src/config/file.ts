import fs from 'node:fs';
import { z } from 'zod';
import { createCatalog, type Catalog } from '../catalog/catalog.js';
import { LOOP_TOOL_NAMES, TOOL_NAME } from '../catalog/tool.js';
import { ConfigError } from '../errors.js';
import { checkToolReferences, jsonPath, refusePrototypeKeys, unknownKeysNote } from './names.js';
import { formatDuration, parseDuration } from './duration.js';

/**
 * The `--config file.json` schema (docs/ARCHITECTURE.md "Public names"): catalog overrides, where decided tool
 * calls go, and which need a person's approval. Validated once; an error names the JSON path. The
 * tools it names are checked against its own catalog here (src/config/names.ts); its `pricing`
 * and a `module` dispatch's exports where the model and the module are known.
 */
const eventOverride = z.union([
  z.literal(false),
  z
    .object({
      tool: z.string().regex(TOOL_NAME, 'a tool name is 1–64 letters, digits, _ or -').optional(),
      description: z.string().min(1).max(1024).optional(),
    })
    .strict(),
]);

const dispatch = z.discriminatedUnion('type', [
  z.object({ type: z.literal('record') }).strict(),
  z
    .object({
      type: z.literal('http'),
      url: z.url({ protocol: /^https?$/, error: 'an http(s) URL' }),
      secret: z.string().min(16, 'at least 16 characters'),
    })
    .strict(),
  z.object({ type: z.literal('module'), path: z.string().min(1) }).strict(),
]);

/** USD per million tokens; 0 is allowed (a free test endpoint), a negative price is not. */
const price = z
  .number({ error: 'a number of US dollars per million tokens' })
  .finite()
  .min(0, 'not below 0');

/** An amount in a currency's minor units (cents for usd, yen for jpy), as Stripe counts them. */
const minorUnits = z
  .number({ error: "a whole number of the currency's minor units (cents for usd, yen for jpy)" })
  .int("a whole number of the currency's minor units (cents for usd, yen for jpy)")
  .min(0, 'not below 0');

/** A currency code as Stripe writes it in events: three lowercase letters. */
export const CURRENCY_CODE = /^[a-z]{3}$/;

/**
 * `approval.amount_over`: per currency, the amount (minor units) above which a decided call waits
 * for a person — `{"usd": 50000, "eur": 45000, "jpy": 75000}`. One number for every currency
 * meant $500 and ¥50,000 (about $330) alike; a call in a currency with no threshold of its own is
 * held (src/agent/approval-rule.ts).
 *
 * The old form, a plain number, is still accepted, and read as `{"usd": n}`: the currency it was
 * almost always written in (the documented example, 50000, was $500.00), so USD calls gate exactly
 * as before and calls in every other currency are held, each with a reason naming the key to add. That only ever holds
 * more than before, never less — the side a payments team wants to err on — and it does not turn
 * a working config into a loop that will not start (refusing it with exit 2 would stop the agent
 * at the upgrade, for a setting whose USD meaning is clear).
 */
const amountOver = z
  .union(
    [
      minorUnits,
      z.record(
        z
          .string()
          .regex(CURRENCY_CODE, 'a currency code in lowercase, as Stripe sends it (usd, eur, jpy)'),
        minorUnits,
      ),
    ],
    {
      error:
        'per currency, the amount in minor units above which a call waits, e.g. {"usd": 50000, "jpy": 75000}',
    },
  )
  .transform((value) => amountThresholds(value));

/** `approval.amount_over` in either form, as thresholds per lowercase currency code. */
export function amountThresholds(value: number | Record<string, number>): Record<string, number> {
  if (typeof value === 'number') return { usd: value };
  // fromEntries defines keys: nothing here reaches a prototype (those keys are refused anyway).
  return Object.fromEntries(Object.entries(value).map(([code, n]) => [code.toLowerCase(), n]));
}

/** The bounds of the approval durations (docs/GUIDE.md "Config file" states them). */
export const EXPIRES_AFTER_MIN_MS = 1_000;
export const EXPIRES_AFTER_MAX_MS = 30 * 86_400_000;
export const DISPUTE_MARGIN_MAX_MS = 30 * 86_400_000;
export const APPROVAL_DEFAULTS = {
  expiresAfterMs: 24 * 3_600_000,
  disputeMarginMs: 24 * 3_600_000,
  onExpiry: 'reject',
} as const;

/** A duration (`"24h"`, `"90m"`, `"2d"`, `"30s"` or seconds) within [min, max], as ms. */
function duration(minMs: number, maxMs: number) {
  const shape = `a duration from ${formatDuration(minMs) === '0s' ? '0' : formatDuration(minMs)} to ${formatDuration(maxMs)}, like "24h", "90m", "2d", "30s" or a number of seconds`;
  return z.unknown().transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === null || ms < minMs || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: shape });
      return z.NEVER;
    }
    return ms;
  });
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Where a notification may go: https only, since the message carries payment facts and a webhook
 * URL is itself a credential. Plain http to a loopback host only with `notify.allow_http_loopback`
 * (a local test endpoint; never another host), the same explicit opt-in a person must write down.
 */
function notifyUrlProblem(raw: string, allowLoopback: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && allowLoopback && LOOPBACK_HOSTS.has(url.hostname)) return null;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) {
    return 'is plain http: allowed only to a loopback test endpoint with "allow_http_loopback": true under "notify"';
  }
  return 'must be an https URL';
}

const notify = z
  .object({
    slack: z
      .object({ webhook_url: z.string().min(1, 'a Slack incoming-webhook URL') })
      .strict()
      .optional(),
    webhook: z
      .object({
        url: z.string().min(1, 'an https URL'),
        secret: z.string().min(16, 'at least 16 characters'),
      })
      .strict()
      .optional(),
    /** Dev and tests only: lets the URLs above be plain http to 127.0.0.1, ::1 or localhost. */
    allow_http_loopback: z.boolean().optional(),
  })
  .strict()
  .superRefine((value, ctx) => {
    const allow = value.allow_http_loopback === true;
    const urls: [PropertyKey[], string | undefined][] = [
      [['slack', 'webhook_url'], value.slack?.webhook_url],
      [['webhook', 'url'], value.webhook?.url],
    ];
    for (const [path, url] of urls) {
      const problem = url === undefined ? null : notifyUrlProblem(url, allow);
      if (problem) ctx.addIssue({ code: 'custom', path, message: problem });
    }
  });

/** A Claude model id as the Messages API takes it, e.g. claude-sonnet-5-5. */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

export const configFileSchema = z
  .object({
    events: z
      .record(
        z.string().regex(/^[a-z0-9_.]+$/, 'an event type such as invoice.paid'),
        eventOverride,
      )
      .optional(),
    dispatch: dispatch.optional(),
    approval: z
      .object({
        tools: z.array(z.string().regex(TOOL_NAME)).optional(),
        amount_over: amountOver.optional(),
        /** How long a call waits for a person before `on_expiry` applies (default 24h). */
        expires_after: duration(EXPIRES_AFTER_MIN_MS, EXPIRES_AFTER_MAX_MS).optional(),
        /** How long before a dispute's evidence_due_by its approval expires (default 24h). */
        dispute_margin: duration(0, DISPUTE_MARGIN_MAX_MS).optional(),
        /** What an expired approval becomes: rejected (default) or approved and dispatched. */
        on_expiry: z
          .enum(['reject', 'approve'], { error: 'either "reject" (the default) or "approve"' })
          .optional(),
      })
      .strict()
      .optional(),
    /** The Claude model for this config (the loop and `rehearse`); --model / ANTHROPIC_MODEL win. */
    model: z.string().regex(MODEL_ID, 'a model id such as claude-sonnet-5-5').optional(),
    /**
     * The live loop's spending stop (src/agent/guardrails.ts): when a UTC day's spend reaches it,
     * the loop pauses (events wait pending) until the next UTC day.
     */
    budget: z
      .object({
        daily_usd: z.number().finite().positive('above 0').optional(),
        daily_tokens: z.number().int('a whole number').positive('above 0').optional(),
      })
      .strict()
      .optional(),
    /** Dispatches per tool per rolling hour; events of a tool at its limit wait pending. */
    limits: z
      .record(
        z.string().regex(TOOL_NAME, 'a tool name such as handle_dispute'),
        z.object({ per_hour: z.number().int('a whole number').positive('above 0') }).strict(),
      )
      .optional(),
    /** The circuit breaker: consecutive failures that pause the loop (default 5). */
    breaker: z
      .object({ failures: z.number().int('a whole number').min(1).max(1000).optional() })
      .strict()
      .optional(),
    /** Where people are told what waits for them (src/operations/notify). */
    notify: notify.optional(),
    /**
     * MCP Events webhooks (docs/MCP.md "Events"): callbacks to private ranges (10/8, 172.16/12,
     * 192.168/16, 100.64/10, fc00::/7), refused by default; webhook subscriptions per principal.
     */
    mcp_events: z
      .object({
        allow_private_callbacks: z.boolean().optional(),
        max_subscriptions: z.number().int('a whole number').min(1).max(10_000).optional(),
      })
      .strict()
      .optional(),
    /** Token prices per model, over the built-in list (src/agent/pricing.ts). */
    pricing: z
      .record(
        z.string().regex(MODEL_ID, 'a model id such as claude-sonnet-5-5'),
        z.object({ input_per_mtok: price, output_per_mtok: price }).strict(),
      )
      .optional(),
  })
  .strict();

export type ConfigFile = z.infer<typeof configFileSchema>;

export function parseConfigFile(text: string, file: string): ConfigFile {
  const setting = `--config ${file}`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      setting,
      `is not valid JSON (${(error as Error).message}). Fix: check the file's syntax.`,
    );
  }
  refusePrototypeKeys(json, setting);
  const result = configFileSchema.safeParse(json);
  if (!result.success) {
    // An unknown key first: it is most likely the misspelling of the key reported missing.
    const issues = result.error.issues;
    const issue = reportedIssue(issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!);
    throw new ConfigError(
      setting,
      `${jsonPath(issue.path)}: ${issue.message}${issue.unknownKeys ? unknownKeysNote(issue.unknownKeys, keysAt(configFileSchema, issue.path)) : ''}. Fix: see the "Config file" section of docs/GUIDE.md.`,
    );
  }
  const config = result.data;
  const catalog = createCatalog(config.events ?? {});
  checkToolNames(catalog, setting);
  checkToolReferences(
    config,
    catalog.entries().map((def) => def.tool),
    setting,
  );
  return config;
}

/**
 * The issue to report, with its full path. A union (`amount_over`: a number, or one per currency)
 * fails as "Invalid input" at its own path; the branch the value got into (not refused for its
 * type at the root) says what is wrong, and where. A record's bad key reports the key's own
 * message ("a currency code in lowercase …") rather than zod's "Invalid key in record".
 */
function reportedIssue(
  issue: z.core.$ZodIssue,
  base: readonly PropertyKey[] = [],
): { path: PropertyKey[]; message: string; unknownKeys?: string[] } {
  const path = [...base, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    return { path, message: issue.message, unknownKeys: issue.keys };
  }
  if (issue.code === 'invalid_union') {
    const branch = issue.errors.find(
      (issues) => !(issues[0]?.code === 'invalid_type' && issues[0].path.length === 0),
    );
    if (branch?.[0]) return reportedIssue(branch[0], path);
  }
  if (issue.code === 'invalid_key' && issue.issues[0]) {
    return { path, message: issue.issues[0].message };
  }
  return { path, message: issue.message };
}

/**
 * The keys the schema's object at `path` knows (through optionals, transforms and refinements),
 * for the did-you-mean of an unknown key; empty when the path does not lead to an object.
 */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: unknown = schema;
  const unwrap = () => {
    for (let i = 0; i < 10; i++) {
      const def = (node as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return;
      if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') {
        node = def.innerType;
      } else if (def.type === 'pipe') {
        node = def.in;
      } else return;
    }
  };
  unwrap();
  for (const key of path) {
    const shape = (node as { shape?: Record<string, unknown> }).shape;
    if (!shape || typeof key !== 'string' || !Object.hasOwn(shape, key)) return [];
    node = shape[key];
    unwrap();
  }
  const shape = (node as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

export function loadConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      `--config ${file}`,
      `cannot be read (${code}). Fix: pass the path of a readable JSON file.`,
    );
  }
  return parseConfigFile(text, file);
}

/**
 * Each tool name of the resulting catalog serves one type (an agent could not tell their calls
 * apart, and a handler would get the other type's facts), and none is one of the agent loop's own.
 */
function checkToolNames(catalog: Catalog, setting: string): void {
  const reserved: readonly string[] = LOOP_TOOL_NAMES;
  const seen = new Map<string, string>();
  for (const def of catalog.entries()) {
    if (reserved.includes(def.tool)) {
      throw new ConfigError(
        setting,
        `${jsonPath(['events', def.type, 'tool'])}: ${JSON.stringify(def.tool)} is a tool of the agent loop itself (${LOOP_TOOL_NAMES.join(', ')}). Fix: give ${def.type} another tool name.`,
      );
    }
    const other = seen.get(def.tool);
    if (other) {
      throw new ConfigError(
        setting,
        `$.events: the tool name ${JSON.stringify(def.tool)} is used for both ${other} and ${def.type}. Fix: give each type its own tool name (a built-in type keeps its tool unless you rename or remove it).`,
      );
    }
    seen.set(def.tool, def.type);
  }
}
