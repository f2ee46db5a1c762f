import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { EventBuffer } from '../buffer/buffer.js';
import { createCatalog } from '../catalog/catalog.js';
import { loadAgentConfig } from '../config/agent.js';
import { parseRedact } from '../config/config.js';
import { defaultDataDir, DATA_DIR_SETTING } from '../config/data-dir.js';
import { loadConfigFile, type ConfigFile } from '../config/file.js';
import { checkPricing } from '../config/names.js';
import { AppError, ConfigError } from '../errors.js';
import { parseSince, type Since } from '../ingress/backfill.js';
import { apiErrorStatus, createModelClient } from '../agent/client.js';
import { LIST_PRICES, priceOf } from '../agent/pricing.js';
import { renderHtml } from '../rehearse/html.js';
import {
  buildReport,
  thresholdsText,
  type PolicySummary,
  type Report,
} from '../rehearse/report.js';
import { rehearseAll, type Policy } from '../rehearse/run.js';
import { fetchIntoScratch, listIds, snapshotLiveStore, unionCatalog } from '../rehearse/source.js';
import {
  createStripeClient,
  loadStripeApiSettings,
  SECRET_KEY_SETTING,
  stripeErrorMessage,
} from '../stripe/client.js';
import { StripeApiError } from './backfill.js';
import { out } from './output.js';

export interface RehearseFlags {
  since?: string;
  config?: string;
  compare?: string;
  model?: string;
  concurrency?: string;
  limit?: string;
  maxCostUsd?: string;
  maxTurns?: string;
  maxTokens?: string;
  redact?: string;
  out?: string;
  dataDir?: string;
  fromStore?: boolean;
}

/** The model API failed and the rehearsal stopped (exit 1; the partial report is written). */
export class ModelApiError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('model_api_error', message, options);
  }
}

const DEFAULT_CONCURRENCY = '4';

function positiveInt(flag: string, raw: string | undefined, fix: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(
      flag,
      `${JSON.stringify(raw)} is not a whole number of 1 or more. Fix: ${fix}`,
    );
  }
  return n;
}

function parseMaxCost(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(
      '--max-cost-usd',
      `${JSON.stringify(raw)} is not an amount of US dollars above 0. Fix: e.g. --max-cost-usd 5.`,
    );
  }
  return n;
}

function policyFrom(
  label: string,
  file: ConfigFile,
  model: string,
  settings: { maxTurns: number; maxTokens: number; redact: Policy['redact'] },
): Policy {
  return {
    label,
    catalog: createCatalog(file.events ?? {}),
    model,
    approval: file.approval ?? {},
    price: priceOf(model, file.pricing ?? {}),
    redact: settings.redact,
    maxTurns: settings.maxTurns,
    maxTokens: settings.maxTokens,
  };
}

/** A new folder for the report: `--out`, which must be new or empty, or one under the data dir. */
function prepareOut(flags: RehearseFlags, dataDir: string, now: Date): string {
  if (flags.out !== undefined) {
    const dir = path.resolve(flags.out);
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      entries = [];
    }
    if (entries.length > 0) {
      throw new ConfigError(
        '--out',
        `${dir} is not empty. Fix: give a new or empty directory (the rehearsal writes its own events.db and report there).`,
      );
    }
    make(dir, '--out');
    return dir;
  }
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const parent = path.join(dataDir, 'rehearsals');
  let dir = path.join(parent, stamp);
  for (let n = 2; fs.existsSync(dir); n++) dir = path.join(parent, `${stamp}-${n}`);
  make(dir, DATA_DIR_SETTING);
  return dir;
}

function make(dir: string, setting: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      setting,
      `cannot create ${dir} (${code}). Fix: give a directory this user can write (--out DIR).`,
    );
  }
}

function dollars(value: number | null): string {
  return value === null ? 'n/a' : `$${value.toFixed(4)}`;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function summaryLines(name: string, s: PolicySummary): string[] {
  const lines = [
    `${name}: ${s.config.file} · ${s.config.model}`,
    `  ${s.events} events: ${s.decided} decided, ${s.no_action} no action, ${s.ask_a_person} ask a person, ${s.invalid} invalid; ${s.approvals} would wait for approval`,
  ];
  const amounts = thresholdsText(s.config.approval);
  if (amounts) lines.push(`  approval by amount: ${amounts}`);
  const tools = Object.entries(s.by_tool).sort((a, b) => a[0].localeCompare(b[0]));
  const width = Math.max(6, ...tools.map(([t]) => t.length)) + 2;
  lines.push(`  ${pad('tool', width)}${pad('events', 8)}actions`);
  for (const [tool, t] of tools) {
    const actions = Object.entries(t.actions)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([a, n]) => `${a} ${n}`)
      .join(' · ');
    lines.push(`  ${pad(tool, width)}${pad(String(t.events), 8)}${actions}`);
  }
  lines.push(
    `  tokens in ${s.tokens.input} out ${s.tokens.output} · cost ${dollars(s.cost_usd)} · latency p50 ${s.latency_ms.p50 ?? '–'} ms p95 ${s.latency_ms.p95 ?? '–'} ms`,
  );
  if (s.cost_note) lines.push(`  note: ${s.cost_note}`);
  return lines;
}

function printSummary(
  report: Report,
  dir: string,
  cap?: { maxCostUsd: number; spentUsd: number | null },
): void {
  const lines = summaryLines('rehearsal', report);
  if (report.compare) {
    const c = report.compare;
    lines.push(...summaryLines('compare', c));
    const diff =
      c.cost_difference_usd === null
        ? 'n/a'
        : `${c.cost_difference_usd >= 0 ? '+' : '-'}$${Math.abs(c.cost_difference_usd).toFixed(4)}`;
    lines.push(
      `differences: ${c.differ} of ${c.differ + c.same} events decided differently; cost difference ${diff} (compare − primary)`,
    );
    for (const d of c.differences.slice(0, 10)) {
      lines.push(
        `  ${d.event_id}  ${d.type}  ${d.primary.tool ?? '–'}:${d.primary.action} → ${d.compare.tool ?? '–'}:${d.compare.action}`,
      );
    }
    if (c.differences.length > 10)
      lines.push(`  … ${c.differences.length - 10} more in report.json`);
  }
  if (report.stopped) lines.push(`stopped: ${report.stopped}`);
  if (cap && cap.spentUsd !== null) {
    // The report's cost covers the events it lists; the cap counted every request, including
    // those of an event the budget cut short.
    lines.push(
      `spent ${dollars(cap.spentUsd)} of --max-cost-usd ${dollars(cap.maxCostUsd)} (every request made)`,
    );
  }
  lines.push(`report: ${path.join(dir, 'report.json')}, ${path.join(dir, 'report.html')}`);
  out(lines.join('\n'));
}

/** The progress bar on a terminal; a plain line every tenth of the way otherwise. */
function progress(total: number): {
  tick(done: number, spentUsd: number): void;
  stop(): void;
} {
  if (process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        format: 'rehearse [{bar}] {value}/{total} events · {cost}',
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { cost: '$0.0000' });
    return {
      tick: (done, spent) => bar.update(done, { cost: `$${spent.toFixed(4)}` }),
      stop: () => bar.stop(),
    };
  }
  const every = Math.max(1, Math.ceil(total / 10));
  return {
    tick(done, spent) {
      if (done % every === 0 || done === total) {
        process.stderr.write(`rehearse: ${done}/${total} events · $${spent.toFixed(4)}\n`);
      }
    },
    stop() {},
  };
}

function writePrivate(file: string, text: string): void {
  fs.writeFileSync(file, text, { mode: 0o600 });
}

/** `stripe-events-mcp rehearse`: returns the exit code. */
export async function runRehearse(
  flags: RehearseFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  // Everything is checked before a request is made or a folder created.
  if (!env.ANTHROPIC_API_KEY?.trim()) {
    throw new ConfigError(
      'ANTHROPIC_API_KEY',
      'is not set, and rehearse asks Claude for each decision. Fix: export ANTHROPIC_API_KEY=sk-ant-… (ANTHROPIC_BASE_URL points it at another endpoint).',
    );
  }
  const file = flags.config ? loadConfigFile(flags.config) : {};
  const other = flags.compare ? loadConfigFile(flags.compare) : undefined;
  const agent = loadAgentConfig(
    { ...flags, concurrency: flags.concurrency ?? DEFAULT_CONCURRENCY },
    env,
    file.model,
  );
  const settings = {
    maxTurns: agent.maxTurns,
    maxTokens: agent.maxTokens,
    redact: parseRedact(flags.redact),
  };
  const policies = [policyFrom(flags.config ?? 'defaults', file, agent.model, settings)];
  if (other && flags.compare) {
    policies.push(policyFrom(flags.compare, other, other.model ?? agent.model, settings));
  }
  // Each config's `pricing` names that config's own model (its `budget` is the live loop's).
  [file, other].forEach((config, i) => {
    const policy = policies[i];
    if (config && policy) {
      const prices = { priceOf, list: LIST_PRICES };
      checkPricing(config, policy.model, prices, `--config ${policy.label}`, { budget: false });
    }
  });
  const limit = positiveInt(
    '--limit',
    flags.limit,
    'the most events to rehearse, e.g. --limit 200.',
  );
  const maxCostUsd = parseMaxCost(flags.maxCostUsd);
  const unpriced = policies.find((p) => p.price === null);
  if (maxCostUsd !== undefined && unpriced) {
    throw new ConfigError(
      `--config ${unpriced.label === 'defaults' ? '<file>' : unpriced.label}`,
      `has no price for the model ${unpriced.model}, so --max-cost-usd cannot be enforced. Fix: add "pricing": {"${unpriced.model}": {"input_per_mtok": …, "output_per_mtok": …}} (US dollars per million tokens).`,
    );
  }
  const dataDir = flags.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env);
  if (dataDir.trim() === '') {
    throw new ConfigError(
      DATA_DIR_SETTING,
      'is empty. Fix: give a directory path or leave it unset.',
    );
  }
  const catalog = unionCatalog(policies.map((p) => p.catalog));
  let since: Since | null = null;
  let stripeKey: string | null = null;
  let stripe: ReturnType<typeof createStripeClient> | null = null;
  if (flags.fromStore) {
    if (flags.since !== undefined) {
      since = parseSince(flags.since);
      if (since.kind !== 'created') {
        throw new ConfigError(
          '--since',
          'an event id is a start for the Events API only. Fix: with --from-store give a duration (7d) or a date-time.',
        );
      }
    }
  } else {
    since = parseSince(flags.since ?? '24h');
    const { secretKey, apiBase } = loadStripeApiSettings(env);
    if (!secretKey) {
      throw new ConfigError(
        SECRET_KEY_SETTING,
        "is not set; rehearse reads the period's events from the Events API with it. Fix: export STRIPE_SECRET_KEY=sk_test_… (or rehearse the stored events with --from-store).",
      );
    }
    stripeKey = secretKey;
    stripe = createStripeClient({ secretKey, apiBase });
  }

  const now = new Date();
  const dir = prepareOut(flags, dataDir, now);
  let store: EventBuffer | undefined;
  try {
    let truncated = false;
    let source: Record<string, unknown>;
    if (stripe && since) {
      if (since.kind === 'created' && since.clamped) {
        process.stderr.write(
          `stripe-events-mcp: --since is older than the 30 days Stripe keeps events; starting from ${new Date(since.gte * 1000).toISOString()}\n`,
        );
      }
      process.stderr.write('rehearse: fetching events from the Events API…\n');
      const fetched = await fetchIntoScratch({ dir, stripe, catalog, since, limit }).catch(
        (error: unknown) => {
          if (error instanceof AppError) throw error;
          throw new StripeApiError(`Stripe API error: ${stripeErrorMessage(error, stripeKey)}`, {
            cause: error,
          });
        },
      );
      store = fetched.store;
      truncated = fetched.truncated;
      source = {
        kind: 'events_api',
        since: since.kind === 'created' ? new Date(since.gte * 1000).toISOString() : since.id,
      };
    } else {
      store = await snapshotLiveStore(dataDir, dir);
      source = {
        kind: 'store',
        data_dir: dataDir,
        since: since?.kind === 'created' ? new Date(since.gte * 1000).toISOString() : null,
      };
    }
    const listed = await listIds(store, catalog.types(), {
      sinceCreated: since?.kind === 'created' && flags.fromStore ? since.gte : undefined,
      limit,
    });
    truncated ||= listed.truncated;
    const client = createModelClient({ apiKey: env.ANTHROPIC_API_KEY!.trim(), maxRetries: 4 });
    const bar = progress(listed.ids.length);
    const scratch = store;
    // Ctrl-C: stop, cancel the decisions in flight, and still write the report of those done.
    const interrupted = new AbortController();
    const onSignal = () => interrupted.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const result = await rehearseAll({
      policies,
      client,
      ids: listed.ids,
      load: (id) => scratch.get(id),
      concurrency: agent.concurrency,
      maxCostUsd,
      onDone: (_, p) => bar.tick(p.done, p.spentUsd),
      signal: interrupted.signal,
    }).finally(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
    bar.stop();
    const stopped = result.stopped ?? (truncated ? 'limit' : null);
    const report = buildReport({ policies, events: result.events, stopped, source, now });
    writePrivate(path.join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    writePrivate(path.join(dir, 'report.html'), renderHtml(report));
    printSummary(
      report,
      dir,
      maxCostUsd === undefined ? undefined : { maxCostUsd, spentUsd: result.spentUsd },
    );
    if (result.stopped === 'error') {
      const e = result.error;
      const code = apiErrorStatus(e);
      const status = code ? ` (HTTP ${code})` : '';
      throw new ModelApiError(
        `the Messages API failed after retries${status}: ${e instanceof Error ? e.message : String(e)}; the report covers the events decided before it`,
        { cause: e },
      );
    }
    return result.stopped === 'interrupted' ? 130 : 0;
  } finally {
    await store?.close();
  }
}
