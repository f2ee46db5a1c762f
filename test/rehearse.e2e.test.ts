import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requestBound, type RequestUsage } from '../src/agent/decide.js';
import { costOf, LIST_PRICES } from '../src/agent/pricing.js';
import { buildTestEvent } from '../src/stripe/fixtures.js';
import {
  apiError,
  startFakeAnthropic,
  toolUse,
  type FakeAnthropic,
  type FakeRequest,
} from './helpers/fake-anthropic.js';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.js';
import { postWebhook, signatureHeader } from './helpers/sign.js';
import { CLI, cliEnv, killLeftovers, runCli, startServe, waitFor } from './helpers/spawn.js';
import { tempDir } from './helpers/tmp.js';

/**
 * `node dist/cli.js rehearse` against a fake Events API with a week of history and a fake
 * Messages API, both over real HTTP.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const HOUR = 3_600_000;
const SECRET = 'whsec_rehearse_test_secret_0123456789';
/** Mapped types and what they map to, and types the catalog does not map. */
const MAPPED: Record<string, string> = {
  'charge.dispute.created': 'handle_dispute',
  'invoice.payment_failed': 'retry_failed_payment',
  'customer.subscription.deleted': 'churn_outreach',
  'charge.refunded': 'log_refund',
};
const UNMAPPED = ['charge.succeeded', 'customer.created'];

/** A week of history, newest first (as the API lists it): one event every 4 hours, types cycled. */
function weekOfHistory(nowMs = Date.now()): Record<string, unknown>[] {
  const types = [...Object.keys(MAPPED), ...UNMAPPED];
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < 42; i++) {
    events.push(
      buildTestEvent(types[(i * 5) % types.length]!, {
        now: new Date(nowMs - i * 4 * HOUR - 60_000),
      }),
    );
  }
  return events;
}

/** How many mapped events of each tool the history holds. */
function expectedByTool(history: Record<string, unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of history) {
    const tool = MAPPED[e.type as string];
    if (tool) counts[tool] = (counts[tool] ?? 0) + 1;
  }
  return counts;
}

/**
 * Decides by tool: disputes are accepted (escalated by the haiku model, for --compare), failed
 * invoices retried, churn needs no action, refunds go to a person. Latency varies a little.
 */
function policyResponder(req: FakeRequest) {
  const tool = req.body.tools[0].name as string;
  const cheap = req.body.model === 'claude-haiku-5-5';
  const answer =
    tool === 'handle_dispute'
      ? toolUse(tool, {
          action: cheap ? 'escalate_to_human' : 'accept',
          rationale: 'Small amount.',
        })
      : tool === 'retry_failed_payment'
        ? toolUse(tool, { action: 'retry_now', rationale: 'Card <b>updated</b> & valid.' })
        : tool === 'churn_outreach'
          ? toolUse('no_action_needed', { rationale: 'Customer asked to cancel.' })
          : toolUse('ask_a_person', { reason: 'Refund of a large order.' });
  return { ...answer, delayMs: (req.n % 4) * 15 };
}

async function fakes(history = weekOfHistory()): Promise<{
  stripe: FakeStripe;
  anthropic: FakeAnthropic;
  history: Record<string, unknown>[];
}> {
  const stripe = await startFakeStripe({ events: history });
  cleanups.push(() => stripe.close());
  const anthropic = await startFakeAnthropic(policyResponder);
  cleanups.push(() => anthropic.close());
  return { stripe, anthropic, history };
}

function dir(prefix = 'sem-rehearse-e2e-'): string {
  const t = tempDir(prefix);
  cleanups.push(t.remove);
  return t.dir;
}

/** A real HTTP server configured as the `dispatch` sink: counts every request it gets. */
async function sink(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests += 1;
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/actions`, requests: () => requests };
}

function writeJson(folder: string, name: string, value: unknown): string {
  const file = path.join(folder, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

function env(f: { stripe: FakeStripe; anthropic: FakeAnthropic }) {
  return {
    STRIPE_SECRET_KEY: f.stripe.key,
    STRIPE_API_BASE: f.stripe.url,
    ANTHROPIC_API_KEY: 'sk-ant-test',
    ANTHROPIC_BASE_URL: f.anthropic.url,
  };
}

/** Every file under `root` (recursively) with its size, mtime and a hash of its bytes. */
function fingerprint(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const file = path.join(d, name);
      const stat = fs.statSync(file);
      if (stat.isDirectory()) walk(file);
      else {
        const hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
        out[path.relative(root, file)] = `${stat.size} ${stat.mtimeMs} ${hash}`;
      }
    }
  };
  walk(root);
  return out;
}

function readReport(outDir: string): any {
  return JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8'));
}

function sumActions(byTool: Record<string, { events: number; actions: Record<string, number> }>) {
  return Object.fromEntries(
    Object.entries(byTool).map(([tool, t]) => [
      tool,
      Object.values(t.actions).reduce((a, b) => a + b, 0),
    ]),
  );
}

/** A live data dir holding the same week, as a running server would have it (by backfill). */
async function liveStore(f: Awaited<ReturnType<typeof fakes>>): Promise<string> {
  const live = dir('sem-rehearse-live-');
  const backfill = await runCli(['backfill', '--since', '7d', '--data-dir', live], {
    env: env(f),
  });
  expect(backfill.code, backfill.stderr).toBe(0);
  return live;
}

describe('stripe-events-mcp rehearse', () => {
  it('rehearses a week of events into report.json and report.html, dispatching nothing and leaving the live data dir alone', async () => {
    const f = await fakes();
    const live = await liveStore(f);
    const before = fingerprint(live);
    expect(Object.keys(before)).toContain('events.db');
    const requestsBefore = f.stripe.requests.length;

    const handler = await sink();
    const cfgDir = dir();
    const config = writeJson(cfgDir, 'policy.json', {
      dispatch: { type: 'http', url: handler.url, secret: 'a-long-enough-test-secret' },
      approval: { tools: ['handle_dispute'] },
    });
    const r = await runCli(
      ['rehearse', '--since', '7d', '--config', config, '--data-dir', live, '--concurrency', '3'],
      { env: env(f) },
    );
    expect(r.code, r.stderr).toBe(0);

    // Stderr is not a TTY here: plain progress lines, no bar.
    expect(r.stderr).toMatch(/^rehearse: \d+\/\d+ events · \$\d+\.\d{4}$/m);
    expect(r.stderr).not.toContain('\r');
    // It fetched the week from the Events API, for the mapped types only.
    expect(f.stripe.requests.length).toBeGreaterThan(requestsBefore);

    const expected = expectedByTool(f.history);
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    // The report went into a new folder under the data dir; nothing else there changed.
    const folders = fs.readdirSync(path.join(live, 'rehearsals'));
    expect(folders).toHaveLength(1);
    const outDir = path.join(live, 'rehearsals', folders[0]!);
    const after = fingerprint(live);
    for (const [file, print] of Object.entries(before)) expect(after[file], file).toBe(print);
    expect(
      Object.keys(after).filter((file) => !(file in before) && !file.startsWith('rehearsals')),
    ).toEqual([]);

    const report = readReport(outDir);
    expect(report.events).toBe(total);
    expect(
      Object.fromEntries(Object.entries(report.by_tool).map(([t, v]: any) => [t, v.events])),
    ).toEqual(expected);
    expect(sumActions(report.by_tool)).toEqual(expected);
    expect(report.by_tool.handle_dispute.actions).toEqual({ accept: expected.handle_dispute });
    expect(report.by_tool.retry_failed_payment.actions).toEqual({
      retry_now: expected.retry_failed_payment,
    });
    expect(report.decided).toBe(expected.handle_dispute! + expected.retry_failed_payment!);
    expect(report.no_action).toBe(expected.churn_outreach);
    expect(report.ask_a_person).toBe(expected.log_refund);
    expect(report.invalid).toBe(0);
    // approval.tools lists handle_dispute: every decided dispute would wait for a person.
    expect(report.approvals).toBe(expected.handle_dispute);
    expect(report.tokens.input).toBeGreaterThan(0);
    expect(report.tokens.output).toBeGreaterThan(0);
    expect(report.cost_usd).toBeGreaterThan(0);
    expect(report.config.model).toBe('claude-sonnet-5-5');
    expect(report.latency_ms.p95).toBeGreaterThanOrEqual(report.latency_ms.p50);
    expect(report.stopped).toBeNull();
    expect(report.decisions).toHaveLength(total);
    expect(report.samples.handle_dispute[0]).toMatchObject({
      action: 'accept',
      rationale: 'Small amount.',
    });
    // One Messages API request per event: the same decision step as the loop.
    expect(f.anthropic.requests).toHaveLength(total);
    expect(f.anthropic.requests[0]!.body.system).toMatch(/decision step of a payments operations/);

    // No dispatch reached the configured sink.
    expect(handler.requests()).toBe(0);

    const html = fs.readFileSync(path.join(outDir, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
    // Model text is escaped, and every decision is in the table with its event id.
    expect(html).toContain('Card &lt;b&gt;updated&lt;/b&gt; &amp; valid.');
    expect(html).not.toContain('<b>updated</b>');
    for (const d of report.decisions) expect(html).toContain(d.event_id);

    // The summary table on stdout.
    expect(r.stdout).toMatch(new RegExp(`${total} events: ${report.decided} decided`));
    expect(r.stdout).toMatch(/^\s+handle_dispute\s+\d+\s+accept \d+$/m);
    expect(r.stdout).toContain(path.join(outDir, 'report.html'));
  });

  it('stops starting decisions at --max-cost-usd (stopped: budget, exit 0)', async () => {
    const f = await fakes();
    const out = path.join(dir(), 'report');
    const r = await runCli(['rehearse', '--since', '7d', '--max-cost-usd', '0.01', '--out', out], {
      env: env(f),
    });
    expect(r.code, r.stderr).toBe(0);
    const report = readReport(out);
    const total = Object.values(expectedByTool(f.history)).reduce((a, b) => a + b, 0);
    expect(report.stopped).toBe('budget');
    expect(report.events).toBeGreaterThanOrEqual(1);
    expect(report.events).toBeLessThan(total);
    expect(f.anthropic.requests.length).toBe(report.events);
    // Within the cap, or over it by less than one request (here one decision, and all cost alike).
    const perEvent = report.cost_usd / report.events;
    expect(report.cost_usd).toBeLessThanOrEqual(0.01 + perEvent);
    expect(r.stdout).toContain('stopped: budget');
  });

  it('--max-cost-usd is a hard cap at any concurrency, with a cheap first event and dearer ones after', async () => {
    // 120 mapped events, one an hour, newest first.
    const types = Object.keys(MAPPED);
    const now = Date.now();
    const history = Array.from({ length: 120 }, (_, i) =>
      buildTestEvent(types[i % types.length]!, { now: new Date(now - i * HOUR - 60_000) }),
    );
    const f = await fakes(history);
    const live = await liveStore(f);
    const cap = 0.05;
    const price = LIST_PRICES['claude-sonnet-5-5']!;
    for (const concurrency of [4, 16, 64]) {
      // The first request is cheap; every later one reports exactly the bound rehearse reserved
      // for it (every byte a token, max_tokens written): the dearest an honest API can be. A mean
      // measured on the first event says nothing about them.
      const answered: { usage: RequestUsage; bound: RequestUsage }[] = [];
      const anthropic = await startFakeAnthropic((req) => {
        const bound = requestBound({
          system: req.body.system,
          userText: req.body.messages[0].content,
          tools: req.body.tools,
          maxTokens: req.body.max_tokens,
        });
        const usage = req.n === 1 ? { input_tokens: 20, output_tokens: 10 } : bound;
        answered.push({ usage, bound });
        return { ...policyResponder(req), usage };
      });
      cleanups.push(() => anthropic.close());
      const out = path.join(dir(), 'report');
      const r = await runCli(
        [
          'rehearse',
          '--from-store',
          '--data-dir',
          live,
          '--concurrency',
          String(concurrency),
          '--max-cost-usd',
          String(cap),
          '--out',
          out,
        ],
        { env: { ...env({ stripe: f.stripe, anthropic }), STRIPE_SECRET_KEY: undefined } },
      );
      expect(r.code, r.stderr).toBe(0);
      const report = readReport(out);
      const spent = answered.reduce((sum, a) => sum + costOf(a.usage, price), 0);
      const oneBound = Math.max(...answered.map((a) => costOf(a.bound, price)));
      expect(report.stopped, `concurrency ${concurrency}`).toBe('budget');
      expect(spent, `concurrency ${concurrency}`).toBeGreaterThanOrEqual(cap);
      expect(spent, `concurrency ${concurrency}`).toBeLessThanOrEqual(cap + oneBound);
      // Tighter still: over by less than the real cost of the last request granted.
      const oneRequest = Math.max(...answered.map((a) => costOf(a.usage, price)));
      expect(spent, `concurrency ${concurrency}`).toBeLessThan(cap + oneRequest);
      // Each decision is one request here: a refused event sent none and is not reported.
      expect(anthropic.requests.length).toBe(report.events);
      expect(report.events).toBeLessThan(history.length);
      expect(report.cost_usd).toBeCloseTo(spent, 6);
      expect(r.stdout).toContain('stopped: budget');
      expect(r.stdout).toMatch(
        /spent \$0\.\d{4} of --max-cost-usd \$0\.0500 \(every request made\)/,
      );
    }
  });

  it('--limit rehearses the newest N events (stopped: limit)', async () => {
    const f = await fakes();
    const out = path.join(dir(), 'report');
    const r = await runCli(['rehearse', '--since', '7d', '--limit', '5', '--out', out], {
      env: env(f),
    });
    expect(r.code, r.stderr).toBe(0);
    const report = readReport(out);
    expect(report.events).toBe(5);
    expect(report.stopped).toBe('limit');
    const newest = f.history.filter((e) => MAPPED[e.type as string]).slice(0, 5);
    expect(report.decisions.map((d: any) => d.event_id).sort()).toEqual(
      newest.map((e) => e.id).sort(),
    );
  });

  it('--compare runs a second config on the same events and reports the differences and the cost difference', async () => {
    const f = await fakes();
    const cfgDir = dir();
    const primary = writeJson(cfgDir, 'a.json', { approval: { tools: ['handle_dispute'] } });
    const other = writeJson(cfgDir, 'b.json', { model: 'claude-haiku-5-5', approval: {} });
    const out = path.join(dir(), 'report');
    const r = await runCli(
      ['rehearse', '--since', '7d', '--config', primary, '--compare', other, '--out', out],
      { env: env(f) },
    );
    expect(r.code, r.stderr).toBe(0);
    const expected = expectedByTool(f.history);
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    const report = readReport(out);
    expect(report.events).toBe(total);
    expect(report.compare.events).toBe(total);
    expect(report.compare.config).toMatchObject({ file: other, model: 'claude-haiku-5-5' });
    expect(report.compare.by_tool.handle_dispute.actions).toEqual({
      escalate_to_human: expected.handle_dispute,
    });
    // Only the disputes are decided differently.
    expect(report.compare.differ).toBe(expected.handle_dispute);
    expect(report.compare.same).toBe(total - expected.handle_dispute!);
    expect(report.compare.differences[0]).toMatchObject({
      type: 'charge.dispute.created',
      primary: { tool: 'handle_dispute', action: 'accept', approval: true },
      compare: { tool: 'handle_dispute', action: 'escalate_to_human', approval: false },
    });
    expect(report.approvals).toBe(expected.handle_dispute);
    expect(report.compare.approvals).toBe(0);
    // Haiku 5.5 lists at a twentieth of Sonnet 5.5: the compare config costs less.
    expect(report.compare.cost_usd).toBeGreaterThan(0);
    expect(report.compare.cost_difference_usd).toBeLessThan(0);
    expect(report.compare.cost_difference_usd).toBeCloseTo(
      report.compare.cost_usd - report.cost_usd,
      5,
    );
    // Both models were asked about every event.
    const models = f.anthropic.requests.map((q) => q.body.model);
    expect(models.filter((m) => m === 'claude-haiku-5-5')).toHaveLength(total);
    expect(models.filter((m) => m === 'claude-sonnet-5-5')).toHaveLength(total);
    expect(r.stdout).toMatch(
      new RegExp(
        `differences: ${expected.handle_dispute} of ${total} events decided differently; cost difference -\\$`,
      ),
    );
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('Compare');
    expect(html).toContain('escalate_to_human');
  });

  it('--from-store rehearses the stored events without a Stripe key and changes nothing in the data dir', async () => {
    const f = await fakes();
    const live = await liveStore(f);
    const before = fingerprint(live);
    const stripeRequests = f.stripe.requests.length;
    const out = path.join(dir(), 'report');

    const r = await runCli(['rehearse', '--from-store', '--data-dir', live, '--out', out], {
      env: { ...env(f), STRIPE_SECRET_KEY: undefined, STRIPE_API_BASE: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(f.stripe.requests.length).toBe(stripeRequests);
    expect(fingerprint(live)).toEqual(before);
    const expected = expectedByTool(f.history);
    const report = readReport(out);
    expect(report.source).toMatchObject({ kind: 'store', data_dir: live });
    expect(
      Object.fromEntries(Object.entries(report.by_tool).map(([t, v]: any) => [t, v.events])),
    ).toEqual(expected);

    // The live store still holds every event, pending, exactly as before.
    const list = await runCli(['events', 'list', '--json', '--data-dir', live]);
    const events = JSON.parse(list.stdout) as { status: string }[];
    expect(events.every((e) => e.status === 'pending')).toBe(true);
  });

  it('--from-store copies a store a running server holds open (its WAL included)', async () => {
    const f = await fakes();
    const live = await liveStore(f);
    // serve opens the store in WAL mode and keeps it open; a webhook commits into the WAL.
    const server = await startServe({ dataDir: live, env: { STRIPE_WEBHOOK_SECRET: SECRET } });
    const dispute = buildTestEvent('charge.dispute.created');
    const payload = JSON.stringify(dispute);
    const posted = await postWebhook(server.url, payload, {
      'stripe-signature': signatureHeader(payload, SECRET),
    });
    expect(posted.status).toBe(200);
    expect(fs.existsSync(path.join(live, 'events.db-wal'))).toBe(true);

    const out = path.join(dir(), 'report');
    const r = await runCli(['rehearse', '--from-store', '--data-dir', live, '--out', out], {
      env: { ...env(f), STRIPE_SECRET_KEY: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    const expected = expectedByTool(f.history);
    const report = readReport(out);
    expect(report.by_tool.handle_dispute.events).toBe(expected.handle_dispute! + 1);
    expect(report.decisions.map((d: any) => d.event_id)).toContain(dispute.id);
    await server.stop();
  });

  it('counts an invalid decision as invalid, and stops on a model API failure with the partial report (exit 1)', async () => {
    const f = await fakes();
    // Disputes get an action the schema does not allow; --max-turns 1 gives no second chance.
    f.anthropic.respond = (req) =>
      req.body.tools[0].name === 'handle_dispute'
        ? toolUse('handle_dispute', { action: 'refund_everything', rationale: 'x' })
        : policyResponder(req);
    const out = path.join(dir(), 'report');
    const r = await runCli(['rehearse', '--since', '7d', '--max-turns', '1', '--out', out], {
      env: env(f),
    });
    expect(r.code, r.stderr).toBe(0);
    const expected = expectedByTool(f.history);
    const report = readReport(out);
    expect(report.invalid).toBe(expected.handle_dispute);
    expect(report.by_tool.handle_dispute.actions).toEqual({ invalid: expected.handle_dispute });
    expect(report.samples.handle_dispute[0].rationale).toBe(
      'the model chose action "refund_everything"; allowed: accept, submit_evidence, escalate_to_human (1 try)',
    );

    // A key the API refuses: nothing more is started, the report says why, exit 1.
    let answered = 0;
    f.anthropic.respond = (req) =>
      ++answered > 3 ? apiError(401, 'authentication_error') : policyResponder(req);
    const out2 = path.join(dir(), 'report');
    const failed = await runCli(
      ['rehearse', '--since', '7d', '--concurrency', '1', '--out', out2],
      { env: env(f) },
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/the Messages API failed after retries \(HTTP 401\)/);
    expect(failed.stderr).not.toContain('sk-ant-test');
    const partial = readReport(out2);
    expect(partial.stopped).toBe('error');
    expect(partial.events).toBe(3);
  });

  it('on Ctrl-C cancels what is in flight and still writes the report of the events done (exit 130)', async () => {
    const f = await fakes();
    let answered = 0;
    f.anthropic.respond = (req) => (++answered > 2 ? { hang: true } : policyResponder(req));
    const out = path.join(dir(), 'report');
    const child = spawn(
      process.execPath,
      [CLI, 'rehearse', '--since', '7d', '--concurrency', '1', '--out', out],
      { env: cliEnv(env(f)), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const exited = new Promise<number | null>((resolve) =>
      child.once('close', (code) => resolve(code)),
    );
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitFor(() => f.anthropic.requests.length >= 3, 'the third decision to be asked for');
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const report = readReport(out);
    expect(report.stopped).toBe('interrupted');
    expect(report.events).toBe(2);
    expect(stdout).toContain('stopped: interrupted');
  });

  it('says what is missing: no Anthropic key, no Stripe key, a budget without a price (exit 2)', async () => {
    const f = await fakes();
    const out = path.join(dir(), 'report');
    const noModelKey = await runCli(['rehearse', '--out', out], {
      env: { ...env(f), ANTHROPIC_API_KEY: undefined },
    });
    expect(noModelKey.code).toBe(2);
    expect(noModelKey.stderr).toMatch(/ANTHROPIC_API_KEY/);

    const noStripeKey = await runCli(['rehearse', '--out', out], {
      env: { ...env(f), STRIPE_SECRET_KEY: undefined },
    });
    expect(noStripeKey.code).toBe(2);
    expect(noStripeKey.stderr).toMatch(/STRIPE_SECRET_KEY.*--from-store/);

    const unpriced = await runCli(
      ['rehearse', '--model', 'claude-unknown-1', '--max-cost-usd', '1', '--out', out],
      { env: env(f) },
    );
    expect(unpriced.code).toBe(2);
    expect(unpriced.stderr).toMatch(/no price for the model claude-unknown-1.*"pricing"/);
    expect(fs.existsSync(out)).toBe(false);

    // Without a budget an unknown model is rehearsed, its cost reported as null with a note.
    const noted = await runCli(
      ['rehearse', '--since', '7d', '--limit', '2', '--model', 'claude-unknown-1', '--out', out],
      {
        env: env(f),
      },
    );
    expect(noted.code, noted.stderr).toBe(0);
    const report = readReport(out);
    expect(report.cost_usd).toBeNull();
    expect(report.cost_note).toMatch(/no price is known for the model claude-unknown-1/);
    expect(noted.stdout).toMatch(/cost n\/a/);
  });
});
