import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, type RunningServer } from '../app.js';
import {
  DEMO_MODEL,
  DEMO_MODEL_NOTE,
  startScriptedModel,
  type ScriptedModel,
} from '../agent/scripted-model.js';
import type { HistoryEntry, StoredEvent } from '../buffer/buffer.js';
import { loadAgentConfig } from '../config/agent.js';
import { loadServeConfig } from '../config/config.js';
import { readDevSecret } from '../config/data-dir.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../logger.js';
import { formatAmount } from '../money.js';
import { buildTestEvent, setPath } from '../stripe/fixtures.js';
import { postSignedEvent } from './trigger.js';

/**
 * `demo`: the whole loop on this machine, without any key. The server and the agent loop start
 * as `serve --agent` starts them (startServer, the same store, catalog, approval rule and sink) on
 * a throwaway data directory, with the dev webhook secret, a record sink and an approval
 * threshold; the loop's model is the scripted one of src/agent/scripted-model.ts, reached through
 * the real Anthropic SDK client. Then a realistic mix of test events is signed and posted to the
 * server's own webhook route, as `trigger` does.
 */

export interface DemoOptions {
  port?: string;
  dataDir?: string;
  logLevel?: string;
}

/** The demo's approval threshold: a call above $500.00 waits for a person. */
export const DEMO_APPROVAL_USD = 50_000;

/** The demo's --config, written into its data directory so a person can read and reuse it. */
export const DEMO_CONFIG = {
  dispatch: { type: 'record' },
  approval: { amount_over: { usd: DEMO_APPROVAL_USD } },
} as const;

export const DEMO_CONFIG_FILE = 'demo-config.json';

/** One test event of the demo: a fixture type, what makes it this event, and what it shows. */
export interface DemoEvent {
  type: string;
  what: string;
  set?: Record<string, unknown>;
}

/**
 * The mix: each one a fixture of src/stripe/fixtures.ts (one shop's customer), the large dispute
 * changed to another dispute of $4,120.00 on another order, which the threshold holds.
 */
export const DEMO_EVENTS: readonly DemoEvent[] = [
  { type: 'charge.dispute.created', what: 'a dispute, with the evidence Stripe attached' },
  { type: 'invoice.payment_failed', what: 'a failed subscription renewal' },
  { type: 'customer.subscription.deleted', what: 'a cancelled subscription' },
  { type: 'charge.refunded', what: 'a refund' },
  { type: 'radar.early_fraud_warning.created', what: 'an early fraud warning' },
  {
    type: 'charge.dispute.created',
    what: 'a large dispute, above the approval threshold',
    set: {
      'data.object.id': 'dp_1R3cX9LkT3vR9mPaH2mQv7Lp',
      'data.object.amount': 412_000,
      'data.object.charge': 'ch_3Qz81kLkT3vR9mPa0Tq4Hn2B',
      'data.object.payment_intent': 'pi_3Qz81kLkT3vR9mPa0Wm7Ye5D',
      'data.object.reason': 'product_not_received',
      'data.object.evidence.product_description':
        'Made-to-order walnut standing desk, 160 × 80 cm. Shipped by freight, signature required.',
      'data.object.metadata': { order_id: '1031' },
    },
  },
];

const LIVE_KEY = /^(sk|rk)_live_/;

/** A live Stripe key (or one pasted where the Anthropic key goes) stops the demo: exit 2. */
export function refuseLiveKeys(env: NodeJS.ProcessEnv): void {
  for (const name of ['STRIPE_SECRET_KEY', 'ANTHROPIC_API_KEY']) {
    const prefix = env[name]?.trim().match(LIVE_KEY)?.[0];
    if (prefix) {
      throw new ConfigError(
        name,
        `holds a live key (${prefix}…), and the demo does not run beside live credentials. Fix: unset ${name} in this shell; the demo needs no key.`,
      );
    }
  }
}

/**
 * The demo's data directory: `--data-dir` only when it does not exist yet (the demo's test events
 * must never mix into a real store), else a new temporary one.
 */
export function demoDataDir(given: string | undefined): { dir: string; temporary: boolean } {
  if (given === undefined) {
    return {
      dir: fs.mkdtempSync(path.join(os.tmpdir(), 'stripe-events-mcp-demo-')),
      temporary: true,
    };
  }
  if (given.trim() === '') {
    throw new ConfigError(
      '--data-dir',
      'is empty. Fix: give a new directory, or leave it out for a temporary one.',
    );
  }
  const dir = path.resolve(given);
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.mkdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new ConfigError(
        '--data-dir',
        `${JSON.stringify(given)} already exists, and the demo only writes into a new directory (its test events must not mix with a real store). Fix: give a path that does not exist yet, or leave --data-dir out for a temporary directory.`,
      );
    }
    throw new ConfigError(
      '--data-dir',
      `${JSON.stringify(given)} cannot be created (${code ?? 'error'}). Fix: give a new directory in a writable place.`,
      { cause: error },
    );
  }
  return { dir, temporary: false };
}

/** The event of a DemoEvent as Stripe would send it (pretty-printed, as `trigger` sends). */
export function demoPayload(event: DemoEvent): string {
  const body = buildTestEvent(event.type);
  for (const [at, value] of Object.entries(event.set ?? {})) setPath(body, at, value);
  return JSON.stringify(body, null, 2);
}

/** What became of one event, in one line: dispatched, waiting for approval, a person asked. */
export function outcomeLine(event: StoredEvent, history: readonly HistoryEntry[]): string {
  const decision = [...history].reverse().find((h) => h.kind === 'decision' && !h.by);
  const call = decision?.tool_call;
  const action = typeof call?.input.action === 'string' ? ` ${call.input.action}` : '';
  const what = call ? `${call.name}${action}` : (decision?.outcome ?? 'no decision yet');
  if (decision?.outcome === 'ask_a_person') {
    return `asks a person: ${decision.note ?? ''}`.trim();
  }
  if (event.status === 'awaiting_approval') {
    const held = [...history].reverse().find((h) => h.kind === 'held');
    return `${what}: awaiting approval (${held?.note ?? 'the approval rule holds it'})`;
  }
  const dispatched = [...history].reverse().find((h) => h.kind === 'dispatch');
  if (event.status === 'acked' && dispatched) return `${what}: dispatched (${dispatched.outcome})`;
  if (event.status === 'acked') return `${what}: acked`;
  return `${what}: ${event.status}${event.lastError ? ` (${event.lastError})` : ''}`;
}

/** Waits (bounded) until no event is pending or claimed: the loop has decided every one. */
async function settled(server: RunningServer, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  for (;;) {
    const { counts } = await server.buffer.stats();
    if (counts.pending + counts.claimed === 0) return true;
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface RunningDemo {
  server: RunningServer;
  /** Stops the server, the loop and the scripted model; removes a temporary data directory. */
  stop(): Promise<void>;
}

/**
 * Starts everything, sends the events, prints what happened and what to try. From its first step
 * on, SIGINT and SIGTERM stop it (also while it starts) and exit: the temporary directory goes
 * with it, a `--data-dir` the person named is kept. A failure to start removes the directory the
 * demo made either way, so the same command can be run again.
 */
export async function runDemo(
  options: DemoOptions,
  env: NodeJS.ProcessEnv,
  command: string,
  say: (text: string) => void = (text) => process.stderr.write(text + '\n'),
): Promise<RunningDemo> {
  refuseLiveKeys(env);
  const { dir, temporary } = demoDataDir(options.dataDir);
  let scripted: ScriptedModel | null = null;
  let server: RunningServer | null = null;
  let stopping: Promise<void> | undefined;
  const stop = (keep: boolean) =>
    (stopping ??= (async () => {
      await server?.close();
      await scripted?.close();
      if (!keep) fs.rmSync(dir, { recursive: true, force: true });
      if (server) say(keep ? `Demo stopped; ${dir} kept.` : `Demo stopped; ${dir} removed.`);
    })());
  const onSignal = () => {
    stop(!temporary).then(
      () => process.exit(0),
      (error: unknown) => {
        say(`stripe-events-mcp: demo shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const configFile = path.join(dir, DEMO_CONFIG_FILE);
    fs.writeFileSync(configFile, JSON.stringify(DEMO_CONFIG, null, 2) + '\n');
    // The demo's settings only: nothing of this shell's environment (a webhook secret, a Stripe
    // key, a Redis URL, a token) reaches it, so it runs the same everywhere, on loopback.
    const config = loadServeConfig(
      {
        port: options.port ?? '0',
        dataDir: dir,
        config: configFile,
        logLevel: options.logLevel ?? (env.LOG_LEVEL || 'warn'),
        backfillOnStart: false,
      },
      {},
    );
    scripted = await startScriptedModel();
    const agent = {
      ...loadAgentConfig({ model: DEMO_MODEL }, { ANTHROPIC_API_KEY: scripted.apiKey }),
      baseURL: scripted.url,
    };
    const threshold = formatAmount(DEMO_APPROVAL_USD, 'usd');
    say(
      [
        '',
        'stripe-events-mcp demo: the server and the agent loop, with test events, on this machine',
        `  ${DEMO_MODEL_NOTE}`,
        `  data      ${dir}${temporary ? ' (temporary: removed when the demo stops)' : ' (kept when the demo stops)'}`,
        `  config    ${configFile} (dispatch: record; approval above ${threshold})`,
        ...(env.ANTHROPIC_API_KEY?.trim()
          ? ['  ANTHROPIC_API_KEY is set and not used: the demo model answers from its script.']
          : []),
      ].join('\n'),
    );
    const logger = createLogger({ level: config.logLevel });
    server = await startServer(config, {
      logger,
      command,
      agent,
      // The note, capitalised as the start of the banner's sentence.
      consoleBanner: `D${DEMO_MODEL_NOTE.slice(1)}. Test events only, in a throwaway data directory.`,
      notice: say,
    });
    const secret = readDevSecret(dir);
    if (!secret) throw new Error(`the dev secret was not created in ${dir}`);
    const webhook = `${server.url}/stripe/webhook`;
    say('Sending test events, signed with the dev secret:');
    const sent: string[] = [];
    for (const event of DEMO_EVENTS) {
      const answer = await postSignedEvent(webhook, demoPayload(event), secret);
      let id = '';
      try {
        id = String((JSON.parse(answer.text) as { id?: unknown }).id ?? '');
      } catch {
        // not JSON: the status says enough
      }
      if (id) sent.push(id);
      say(`  ${event.type.padEnd(34)} ${event.what}: HTTP ${answer.status} ${id}`);
    }
    const sentAt = Date.now();
    if (await settled(server, 30_000)) {
      const seconds = ((Date.now() - sentAt) / 1000).toFixed(1);
      say(`Decided by the agent loop (the demo model) in ${seconds} s:`);
    } else {
      say('Still deciding; so far:');
    }
    for (const id of sent) {
      const stored = await server.buffer.get(id);
      if (stored) say(`  ${id}  ${outcomeLine(stored, await server.buffer.history(id))}`);
    }
    // A held call to approve from the command line (not the event that asks a person: no call).
    let approve: string | undefined;
    for (const id of sent) {
      const history = await server.buffer.history(id);
      const stored = await server.buffer.get(id);
      if (stored?.status === 'awaiting_approval' && history.some((h) => h.tool_call)) approve = id;
    }
    const quoted = JSON.stringify(dir);
    say(
      [
        '',
        'Try:',
        `  the console         ${server.url}/console   (approve or reject what waits there)`,
        `  the queue           ${command} events list --data-dir ${quoted}`,
        ...(approve
          ? [
              `  approve from here   ${command} events approve ${approve} --config ${JSON.stringify(configFile)} --data-dir ${quoted}`,
            ]
          : []),
        `  Claude Code         claude mcp add --transport http stripe-events-demo ${server.url}/mcp`,
        `  another event       ${command} trigger invoice.payment_failed --data-dir ${quoted} --url ${webhook}`,
        temporary
          ? `Ctrl-C stops the demo and removes ${dir}.`
          : `Ctrl-C stops the demo; ${dir} is kept.`,
        '',
      ].join('\n'),
    );
  } catch (error) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stop(false).catch(() => undefined);
    throw error;
  }
  return { server: server as RunningServer, stop: () => stop(!temporary) };
}
