// Backfill throughput: `backfill()` (stripe-node auto-pagination → catalog → SQLite append with
// dedup) pulling N events from a fake Events API served by a separate child process, next to a
// same-run baseline that fetches the same pages with plain fetch + JSON.parse and discards them.
// Each mode runs in a fresh worker process (clean RSS). Reported: events/s, peak RSS, the time in
// our code (catalog + append, measured inside backfill) and the fake API's own service time.
//
//   npm run build && node bench/backfill.mjs [--events 10000] [--runs 3] [--json <file>]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  assertBuilt,
  fmt,
  machine,
  median,
  parseFlags,
  printMachine,
  table,
  tmpDir,
} from './server-harness.mjs';

const SELF = fileURLToPath(import.meta.url);
const MAPPED = [
  'charge.dispute.created',
  'invoice.payment_failed',
  'customer.subscription.deleted',
  'charge.refunded',
  'payment_intent.succeeded',
  'checkout.session.completed',
];
const KEY = 'sk_test_bench_0123456789';
const role = process.argv[2];

if (role === '--serve-fake') await serveFake(Number(process.argv[3]));
else if (role === '--worker') await worker(process.argv[3], process.argv[4]);
else await main();

/** The fake Events API: newest first, starting_after paging, 100 a page, service time measured. */
async function serveFake(n) {
  const { buildTestEvent } = await import('../dist/stripe/fixtures.js');
  const now = Date.now();
  const events = [];
  for (let i = 0; i < n; i++) {
    const e = buildTestEvent(MAPPED[i % MAPPED.length], { now: new Date(now - i * 1000) });
    events.push({ id: e.id, json: JSON.stringify(e) });
  }
  const index = new Map(events.map((e, i) => [e.id, i]));
  let serviceNs = 0n;
  let requests = 0;
  const server = http.createServer((req, res) => {
    const t0 = process.hrtime.bigint();
    const url = new URL(req.url, 'http://fake');
    if (url.pathname === '/_stats') {
      res.end(JSON.stringify({ serviceMs: Number(serviceNs) / 1e6, requests }));
      serviceNs = 0n;
      requests = 0;
      return;
    }
    if (req.headers.authorization !== `Bearer ${KEY}`) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: 'bad key' } }));
      return;
    }
    const limit = Math.min(100, Number(url.searchParams.get('limit') ?? 10));
    const after = url.searchParams.get('starting_after');
    const lo = after ? index.get(after) + 1 : 0;
    const page = events.slice(lo, lo + limit);
    const body = `{"object":"list","data":[${page.map((e) => e.json).join(',')}],"has_more":${lo + limit < events.length},"url":"/v1/events"}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
    requests++;
    serviceNs += process.hrtime.bigint() - t0;
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${server.address().port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

/** One measured run in a fresh process; prints its figures as one JSON line. */
async function worker(mode, api) {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  let fetched = 0;
  let ownMs = 0;
  let queued = 0;
  let duplicate = 0;
  if (mode === 'baseline') {
    let after = null;
    for (;;) {
      const q = new URLSearchParams({ limit: '100' });
      for (const [i, t] of MAPPED.entries()) q.set(`types[${i}]`, t);
      if (after) q.set('starting_after', after);
      const res = await fetch(`${api}/v1/events?${q}`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      const page = await res.json();
      fetched += page.data.length;
      if (!page.has_more || page.data.length === 0) break;
      after = page.data.at(-1).id;
    }
  } else {
    const { backfill, parseSince } = await import('../dist/ingress/backfill.js');
    const { createStripeClient } = await import('../dist/stripe/client.js');
    const { createCatalog } = await import('../dist/catalog/catalog.js');
    const { openSqliteBuffer } = await import('../dist/buffer/sqlite/store.js');
    const dir = tmpDir('sem-bench-backfill-');
    const buffer = openSqliteBuffer(dir);
    const stripe = createStripeClient({ secretKey: KEY, apiBase: api });
    const catalog = createCatalog();
    const run = () =>
      backfill({ stripe, buffer, catalog, since: parseSince('30d'), types: MAPPED });
    let counts = await run();
    if (mode === 'backfill-again') {
      // The same pull a second time: every event is a duplicate (the dedup path).
      await fetch(`${api}/_stats`);
      peak = process.memoryUsage().rss;
      const t1 = performance.now();
      counts = await run();
      Object.assign(counts, { wallMs: performance.now() - t1 });
    }
    fetched = counts.fetched;
    ownMs = counts.ownMs;
    queued = counts.queued;
    duplicate = counts.duplicate;
    await buffer.close();
    fs.rmSync(dir, { recursive: true, force: true });
    if (counts.wallMs !== undefined) {
      clearInterval(sampler);
      process.stdout.write(
        JSON.stringify({
          fetched,
          queued,
          duplicate,
          ownMs,
          wallMs: counts.wallMs,
          peakMB: peak / 2 ** 20,
        }) + '\n',
      );
      return;
    }
  }
  clearInterval(sampler);
  const wallMs = performance.now() - t0;
  process.stdout.write(
    JSON.stringify({ fetched, queued, duplicate, ownMs, wallMs, peakMB: peak / 2 ** 20 }) + '\n',
  );
}

function runChild(args, { untilLine = false } = {}) {
  const child = spawn(process.execPath, [SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c) => {
      out += c;
      if (untilLine && out.includes('\n')) resolve({ child, line: out.trim() });
    });
    child.on('close', (code) =>
      code === 0 || untilLine
        ? resolve({ child, line: out.trim() })
        : reject(new Error(`worker exited ${code}`)),
    );
  });
}

async function main() {
  assertBuilt();
  const flags = parseFlags(process.argv.slice(2), {
    events: 'string',
    runs: 'string',
    json: 'string',
  });
  const N = Number(flags.events ?? 10_000);
  const RUNS = Number(flags.runs ?? 3);
  printMachine(machine());
  const fake = await runChild(['--serve-fake', String(N)], { untilLine: true });
  const api = `http://127.0.0.1:${fake.line}`;
  console.log(
    `fake Events API (child process ${fake.child.pid}) at ${api}: ${N} events, 100 per page`,
  );
  const results = { baseline: [], backfill: [], 'backfill-again': [] };
  for (let r = 0; r < RUNS; r++) {
    for (const mode of Object.keys(results)) {
      await fetch(`${api}/_stats`); // reset the fake's counters
      const { line } = await runChild(['--worker', mode, api]);
      const figures = JSON.parse(line);
      const stats = await (await fetch(`${api}/_stats`)).json();
      if (figures.fetched !== N) throw new Error(`${mode} fetched ${figures.fetched} of ${N}`);
      results[mode].push({ ...figures, serviceMs: stats.serviceMs, requests: stats.requests });
    }
  }
  fake.child.kill('SIGTERM');
  const row = (label, runs) => {
    const wall = median(runs.map((x) => x.wallMs));
    const own = median(runs.map((x) => x.ownMs));
    const service = median(runs.map((x) => x.serviceMs));
    return [
      label,
      fmt(N / (wall / 1000), 0),
      fmt(wall, 0),
      fmt(median(runs.map((x) => x.peakMB)), 0),
      own ? `${fmt(own, 0)} (${fmt((100 * own) / wall, 0)}%)` : '-',
      `${fmt(service, 0)} (${fmt((100 * service) / wall, 0)}%)`,
      fmt(Math.max(0, wall - own - service), 0),
    ];
  };
  console.log(`\nmedian of ${RUNS} runs, ${N} events, each run in a fresh process`);
  console.log(
    table([
      [
        'run',
        'events/s',
        'wall ms',
        'peak RSS MB',
        'our code ms (share)',
        'fake API service ms (share)',
        'rest ms (stripe-node, HTTP, JSON)',
      ],
      row('baseline: fetch + JSON.parse, discard', results.baseline),
      row('backfill into an empty SQLite store', results.backfill),
      row('backfill again (all duplicates)', results['backfill-again']),
    ]),
  );
  const q = results.backfill[0];
  const d = results['backfill-again'][0];
  console.log(
    `\ncounts: first run queued ${q.queued}, duplicate ${q.duplicate}; second run queued ${d.queued}, duplicate ${d.duplicate}`,
  );
  if (flags.json) fs.writeFileSync(flags.json, JSON.stringify({ N, RUNS, results }, null, 2));
}
