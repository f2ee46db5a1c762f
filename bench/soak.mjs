// Soak: a long run of the whole server under mixed load, reported per window, to show that memory
// stays flat and the webhook stays fast while the agent and MCP sessions work beside it.
//
//   npm run build && node bench/soak.mjs [--minutes 30] [--rate 120] [--sessions 10]
//     [--concurrency 8] [--model-delay 50] [--window 30] [--baseline 60] [--store sqlite|redis]
//     [--env KEY=VALUE,...] [--node-args "--flag ..."] [--server-stdout FILE]
//     [--heap-snapshot-at MIN,MIN --heap-snapshot-dir DIR]
//
// A real `serve --agent` (dist/cli.js, SQLite store in a temp dir, or Redis) with its agent loop
// at --concurrency against a fake Messages API in its own process answering after --model-delay ms
// (bench/fake-messages-api.mjs); --sessions official SDK clients over Streamable HTTP, each
// subscribed to stripe-events://pending and hearing its notifications; and, in a worker thread of
// this process (its own event loop, so the clients' work does not delay the sending), signed
// webhooks sent open-loop at --rate a second, every event about an object of its own, of the
// mapped types in turn.
//
// Each --window seconds: the server's RSS (and its anonymous / file-backed parts, from
// /proc/PID/smaps_rollup), the JS heap and the external memory V8 knows of (from /metrics), the
// WAL's size, the webhook latency p50 / p99 / max of the window, events sent and acked, and the
// notifications the sessions heard. At the end: nothing lost (every event answered 200 is stored
// and acked), none decided twice (Messages API requests = events), RSS growth from minute 5, the
// worst window's p99 from minute 1 — beside the same rate's ingest alone (a fresh `serve`, no
// agent, no sessions) for --baseline seconds, run first.
import { fork, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { setMaxListeners } from 'node:events';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');

if (!isMainThread) await loadWorker();
else await main();

// ---------------------------------------------------------------------------------------------
// The load: open-loop signed webhooks at a fixed rate, latency per window.

async function loadWorker() {
  const { default: Stripe } = await import('stripe');
  const { buildTestEvent, FIXTURE_TYPES } = await import(
    path.join(ROOT, 'dist/stripe/fixtures.js')
  );
  const { url, secret, rate, windowMs } = workerData;
  const target = new URL('/stripe/webhook', url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const { createCatalog } = await import(path.join(ROOT, 'dist/catalog/catalog.js'));
  // Mapped types only: an unmapped one is answered 200 and not stored, which the counts would miss.
  const mapped = new Set(
    createCatalog()
      .entries()
      .map((d) => d.type),
  );
  const types =
    workerData.types.length > 0 ? workerData.types : FIXTURE_TYPES.filter((t) => mapped.has(t));
  let sent = 0;
  let window = { latencies: [], ok: 0, other: 0, errors: 0 };
  let inFlight = 0;
  let stopping = false;

  function post() {
    const event = buildTestEvent(types[sent % types.length]);
    const object = event.data.object;
    if (object && typeof object.id === 'string') {
      object.id = `${object.id}_${crypto.randomBytes(5).toString('hex')}`;
    }
    sent += 1;
    const body = JSON.stringify(event);
    const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret });
    const started = performance.now();
    inFlight += 1;
    const req = http.request(
      target,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'stripe-signature': header,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          inFlight -= 1;
          window.latencies.push(performance.now() - started);
          if (res.statusCode === 200) window.ok += 1;
          else window.other += 1;
        });
      },
    );
    req.on('error', () => {
      inFlight -= 1;
      window.errors += 1;
    });
    req.end(body);
  }

  // Open loop: every tick sends what the clock says is due, so a slow answer does not slow the
  // arrivals (Stripe does not wait either).
  const t0 = performance.now();
  const ticker = setInterval(() => {
    if (stopping) return;
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (sent < due) post();
  }, 5);
  const reporter = setInterval(() => {
    const w = window;
    window = { latencies: [], ok: 0, other: 0, errors: 0 };
    parentPort.postMessage({ type: 'window', sent, inFlight, ...summarise(w) });
  }, windowMs);
  parentPort.on('message', async (message) => {
    if (message !== 'stop') return;
    stopping = true;
    clearInterval(ticker);
    clearInterval(reporter);
    while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const w = window;
    parentPort.postMessage({ type: 'done', sent, ...summarise(w) });
    agent.destroy();
    parentPort.close();
  });

  function summarise(w) {
    const s = Float64Array.from(w.latencies).sort();
    const q = (p) =>
      s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
    return {
      n: s.length,
      ok: w.ok,
      other: w.other,
      errors: w.errors,
      p50: q(50),
      p99: q(99),
      max: s.at(-1) ?? NaN,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

async function main() {
  if (!fs.existsSync(CLI)) {
    process.stderr.write('dist/cli.js is missing: run `npm run build` first\n');
    process.exit(2);
  }
  const args = Object.fromEntries(
    process.argv.slice(2).reduce((pairs, arg, i, all) => {
      if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1]]);
      return pairs;
    }, []),
  );
  const MINUTES = Number(args.minutes ?? 30);
  const RATE = Number(args.rate ?? 120);
  const SESSIONS = Number(args.sessions ?? 10);
  const CONCURRENCY = Number(args.concurrency ?? 8);
  const MODEL_DELAY = Number(args['model-delay'] ?? 50);
  const WINDOW_S = Number(args.window ?? 30);
  const BASELINE_S = Number(args.baseline ?? 60);
  const STORE = args.store ?? 'sqlite';
  const TYPES = args.types ? String(args.types).split(',') : [];
  const EXTRA_ENV = Object.fromEntries(
    (args.env ? String(args.env).split(',') : []).map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
  const NODE_ARGS = args['node-args'] ? String(args['node-args']).split(' ').filter(Boolean) : [];
  const SNAPSHOT_DIR = args['heap-snapshot-dir'] ?? null;
  const SERVER_STDOUT = args['server-stdout'] ?? null;
  const SNAPSHOT_AT = args['heap-snapshot-at']
    ? String(args['heap-snapshot-at']).split(',').map(Number)
    : [];
  /** Issue #22 point 8. */
  const TARGET = { rssGrowthMB: 20, fromMinute: 5, p99Ms: 25 };

  setMaxListeners(0);
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } =
    await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const { ResourceUpdatedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');

  const secret = `whsec_${crypto.randomBytes(18).toString('base64url')}`;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const redisPrefix = `soak-${process.pid}-${Date.now()}:`;

  console.log(
    `machine: ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, ` +
      `${Math.round(os.totalmem() / 2 ** 30)} GB; node ${process.version}; ${new Date().toISOString()}; ` +
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    `soak: ${MINUTES} min at ${RATE} webhooks/s, ${SESSIONS} MCP sessions, agent concurrency ` +
      `${CONCURRENCY}, model ${MODEL_DELAY} ms, store ${STORE}, windows of ${WINDOW_S} s` +
      (Object.keys(EXTRA_ENV).length ? `, env ${JSON.stringify(EXTRA_ENV)}` : '') +
      (NODE_ARGS.length ? `, node ${NODE_ARGS.join(' ')}` : ''),
  );

  const fake = fork(path.join(ROOT, 'bench', 'fake-messages-api.mjs'), [String(MODEL_DELAY)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const { port: fakePort } = await new Promise((resolve, reject) => {
    fake.once('message', resolve);
    fake.once('exit', (code) => reject(new Error(`the fake Messages API exited (${code})`)));
  });
  const fakeUrl = `http://127.0.0.1:${fakePort}`;

  async function startServe(extra, env = {}) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
    const argv = [...NODE_ARGS, CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...extra];
    if (STORE === 'redis')
      argv.push('--store', 'redis', '--redis-prefix', `${redisPrefix}${extra.length}:`);
    const child = spawn(process.execPath, argv, {
      // Heap snapshots (--heap-snapshot-at) are written to the working directory.
      cwd: SNAPSHOT_DIR ?? dataDir,
      env: {
        ...process.env,
        STRIPE_WEBHOOK_SECRET: secret,
        LOG_LEVEL: 'info',
        MCP_AUTH_TOKEN: '',
        ...EXTRA_ENV,
        ...env,
      },
      // --server-stdout FILE keeps what the server prints on stdout (e.g. --node-args --trace-gc).
      stdio: [
        'ignore',
        SERVER_STDOUT === null ? 'ignore' : fs.openSync(SERVER_STDOUT, 'w'),
        'pipe',
      ],
    });
    let err = '';
    const url = await new Promise((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (chunk) => {
        // Keep the tail only: warnings over half an hour must not grow this process.
        err = (err + chunk).slice(-20_000);
        const m = /"msg":"listening","url":"([^"]+)"/.exec(err);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}\n${err}`)));
    });
    return {
      url,
      pid: child.pid,
      dataDir,
      tail: () => err,
      stop: () =>
        new Promise((resolve) => {
          if (child.exitCode !== null) {
            fs.rmSync(dataDir, { recursive: true, force: true });
            return resolve();
          }
          child.once('exit', () => {
            fs.rmSync(dataDir, { recursive: true, force: true });
            resolve();
          });
          child.kill('SIGTERM');
        }),
    };
  }

  function load(url, seconds, onWindow) {
    const worker = new Worker(fileURLToPath(import.meta.url), {
      workerData: { url, secret, rate: RATE, windowMs: WINDOW_S * 1000, types: TYPES },
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => worker.postMessage('stop'), seconds * 1000);
      worker.on('message', (m) => {
        if (m.type === 'window') onWindow(m);
        if (m.type === 'done') {
          clearTimeout(timer);
          resolve(m);
        }
      });
      worker.once('error', reject);
    });
  }

  function memory(pid) {
    const read = (file) => {
      try {
        return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
      } catch {
        return '';
      }
    };
    const kb = (text, key) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]) / 1024;
    const rollup = read('smaps_rollup');
    return {
      rss: kb(read('status'), 'VmRSS'),
      anon: kb(rollup, 'Anonymous'),
      file: kb(rollup, 'Rss') - kb(rollup, 'Anonymous'),
    };
  }

  async function metrics(url) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name, labels = '') =>
      Number(new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    const byKind = (suffix, extra = '') =>
      Object.fromEntries(
        [
          ...text.matchAll(
            new RegExp(
              `^stripe_events_nodejs_gc_duration_seconds_${suffix}\\{${extra}kind="(\\w+)"\\} (\\S+)$`,
              'gm',
            ),
          ),
        ].map((m) => [m[1], Number(m[2])]),
      );
    return {
      gc: { count: byKind('count'), sum: byKind('sum'), under10ms: byKind('bucket', 'le="0.01",') },
      heapUsed: value('stripe_events_nodejs_heap_size_used_bytes') / 2 ** 20,
      heapTotal: value('stripe_events_nodejs_heap_size_total_bytes') / 2 ** 20,
      external: value('stripe_events_nodejs_external_memory_bytes') / 2 ** 20,
      // The event loop's delay over the window (prom-client resets its histogram each scrape).
      lagP99: value('stripe_events_nodejs_eventloop_lag_p99_seconds') * 1000,
      lagMax: value('stripe_events_nodejs_eventloop_lag_max_seconds') * 1000,
      // Cumulative: the window's share is the difference from the last scrape.
      gcSeconds: [
        ...text.matchAll(/^stripe_events_nodejs_gc_duration_seconds_sum\{kind="\w+"\} (\S+)$/gm),
      ].reduce((a, m) => a + Number(m[1]), 0),
      gcOver10ms:
        [
          ...text.matchAll(
            /^stripe_events_nodejs_gc_duration_seconds_count\{kind="\w+"\} (\S+)$/gm,
          ),
        ].reduce((a, m) => a + Number(m[1]), 0) -
        [
          ...text.matchAll(
            /^stripe_events_nodejs_gc_duration_seconds_bucket\{le="0.01",kind="\w+"\} (\S+)$/gm,
          ),
        ].reduce((a, m) => a + Number(m[1]), 0),
      statuses: Object.fromEntries(
        [...text.matchAll(/^stripe_events_queue\{status="(\w+)"\} (\d+)$/gm)].map((m) => [
          m[1],
          Number(m[2]),
        ]),
      ),
    };
  }

  const walMB = (dataDir) => {
    try {
      const file = fs.readdirSync(dataDir).find((f) => f.endsWith('-wal'));
      return file ? fs.statSync(path.join(dataDir, file)).size / 2 ** 20 : 0;
    } catch {
      return 0;
    }
  };

  // 1. Baseline: ingest alone at the same rate, a fresh server, nothing else running.
  let baseline = null;
  if (BASELINE_S > 0) {
    const server = await startServe([]);
    const windows = [];
    const done = await load(server.url, BASELINE_S, (w) => windows.push(w));
    windows.push(done);
    await server.stop();
    const p99s = windows.filter((w) => w.n > 0).map((w) => w.p99);
    baseline = { p99: Math.max(...p99s), windows: windows.length };
    console.log(
      `baseline, ingest alone ${BASELINE_S} s: worst window p99 ${fmt(baseline.p99, 2)} ms ` +
        `(windows: ${p99s.map((p) => fmt(p, 2)).join(', ')})`,
    );
  }

  // 2. The soak.
  const server = await startServe(['--agent', '--concurrency', String(CONCURRENCY)], {
    ANTHROPIC_BASE_URL: fakeUrl,
    ANTHROPIC_API_KEY: 'sk-ant-soak-fake',
  });
  const sessions = [];
  let heard = 0;
  for (let i = 0; i < SESSIONS; i++) {
    const client = new Client({ name: `soak-${i}`, version: '1.0.0' });
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => {
      heard += 1;
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
    await client.subscribeResource({ uri: 'stripe-events://pending' });
    sessions.push(client);
  }
  // A session also reads, as an agent beside the loop would: a page of pending events a second.
  let reads = 0;
  const reader = setInterval(() => {
    sessions[0]
      .callTool({ name: 'list_pending_events', arguments: { limit: 20 } })
      .then(() => (reads += 1))
      .catch(() => {});
  }, 1000);

  const t0 = performance.now();
  const rows = [];
  const snapshots = new Set(SNAPSHOT_AT);
  const header =
    'min    RSS  anon  file   heap  heapTot  extern   WAL   sent   acked  pending  ' +
    'p50 ms  p99 ms  max ms  non-200   heard  lag p99 lag max  GC ms  GC>10ms';
  console.log(header);
  let okTotal = 0;
  let lastGc = { seconds: 0, long: 0 };
  const result = await load(server.url, MINUTES * 60, async (w) => {
    okTotal += w.ok;
    const minute = (performance.now() - t0) / 60_000;
    const mem = memory(server.pid);
    let m;
    try {
      m = await metrics(server.url);
    } catch {
      m = { heapUsed: NaN, heapTotal: NaN, external: NaN, statuses: {}, gcSeconds: NaN };
    }
    const gcMs = (m.gcSeconds - lastGc.seconds) * 1000;
    const gcLong = m.gcOver10ms - lastGc.long;
    lastGc = { seconds: m.gcSeconds, long: m.gcOver10ms };
    const r = {
      minute,
      ...mem,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      wal: walMB(server.dataDir),
      sent: w.sent,
      acked: m.statuses.acked ?? 0,
      pending: (m.statuses.pending ?? 0) + (m.statuses.claimed ?? 0),
      p50: w.p50,
      p99: w.p99,
      max: w.max,
      non200: w.other + w.errors,
      heard,
      lagP99: m.lagP99,
      lagMax: m.lagMax,
      gcMs,
      gcLong,
    };
    rows.push(r);
    console.log(
      [
        fmt(r.minute, 1).padStart(4),
        fmt(r.rss, 0).padStart(5),
        fmt(r.anon, 0).padStart(5),
        fmt(r.file, 0).padStart(4),
        fmt(r.heapUsed, 0).padStart(6),
        fmt(r.heapTotal, 0).padStart(8),
        fmt(r.external, 0).padStart(7),
        fmt(r.wal, 1).padStart(5),
        String(r.sent).padStart(6),
        String(r.acked).padStart(7),
        String(r.pending).padStart(8),
        fmt(r.p50, 2).padStart(7),
        fmt(r.p99, 2).padStart(7),
        fmt(r.max, 1).padStart(7),
        String(r.non200).padStart(8),
        String(r.heard).padStart(7),
        fmt(r.lagP99, 1).padStart(7),
        fmt(r.lagMax, 1).padStart(7),
        fmt(r.gcMs, 0).padStart(6),
        String(r.gcLong).padStart(5),
      ].join(' '),
    );
    for (const at of snapshots) {
      if (minute >= at) {
        snapshots.delete(at);
        // Needs --node-args --heapsnapshot-signal=SIGUSR2; written to --heap-snapshot-dir.
        process.kill(server.pid, 'SIGUSR2');
      }
    }
  });
  clearInterval(reader);
  okTotal += result.ok;

  // 3. Drain: every event answered 200 must end acked.
  const drainStart = performance.now();
  let last = await metrics(server.url);
  while (
    (last.statuses.pending ?? 0) + (last.statuses.claimed ?? 0) > 0 &&
    performance.now() - drainStart < 120_000
  ) {
    await sleep(500);
    last = await metrics(server.url);
  }
  const stats = await (await fetch(`${fakeUrl}/_stats`)).json();
  const gcKinds = Object.keys(last.gc.count)
    .map(
      (kind) =>
        `${kind} ${last.gc.count[kind]} (${fmt(last.gc.sum[kind], 1)} s, ` +
        `${last.gc.count[kind] - (last.gc.under10ms[kind] ?? 0)} over 10 ms)`,
    )
    .join(', ');
  for (const client of sessions) await client.close().catch(() => {});
  const final = memory(server.pid);
  await server.stop();
  fake.kill();

  const total = Object.values(last.statuses).reduce((a, b) => a + b, 0);
  const acked = last.statuses.acked ?? 0;
  const okAnswers = okTotal;
  // RSS rises and falls by tens of MB as V8 grows and shrinks its heap between collections, so one
  // sample against another says little. Growth is read per 5-minute block from minute 5: the
  // block's high-water mark (what a capacity plan must allow) and its median, last block against
  // the first. A leak raises both, block after block; the strict figure (the highest sample after
  // minute 5 against the one at minute 5) is printed too.
  const blocks = [];
  for (const r of rows.filter((x) => x.minute >= TARGET.fromMinute)) {
    const b = Math.floor((r.minute - TARGET.fromMinute) / 5);
    (blocks[b] ??= []).push(r);
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const blockStats = blocks.filter(Boolean).map((b) => ({
    from: TARGET.fromMinute + 5 * Math.floor((b[0].minute - TARGET.fromMinute) / 5),
    peak: Math.max(...b.map((r) => r.rss)),
    median: med(b.map((r) => r.rss)),
    heapPeak: Math.max(...b.map((r) => r.heapTotal)),
    native: med(b.map((r) => r.anon - r.heapTotal)),
  }));
  const first = blockStats[0];
  const lastBlock = blockStats.at(-1);
  const growth = blockStats.length > 1 ? lastBlock.peak - first.peak : NaN;
  const medianGrowth = blockStats.length > 1 ? lastBlock.median - first.median : NaN;
  const after = rows.filter((r) => r.minute >= TARGET.fromMinute);
  const strict = after.length > 0 ? Math.max(...after.map((r) => r.rss)) - after[0].rss : NaN;
  const p99Rows = rows.filter((r) => r.minute >= 1);
  const worstP99 = Math.max(...p99Rows.map((r) => r.p99));
  const medianP99 = [...p99Rows.map((r) => r.p99)].sort((a, b) => a - b)[
    Math.floor(p99Rows.length / 2)
  ];
  const heapRange = [
    Math.min(...rows.map((r) => r.heapUsed)),
    Math.max(...rows.map((r) => r.heapUsed)),
  ];

  console.log('');
  console.log(
    `events: ${result.sent} sent, ${okAnswers} answered 200, ${total} stored, ${acked} acked, ` +
      `${total - acked} not acked (statuses ${JSON.stringify(last.statuses)}); ` +
      `Messages API requests ${stats.requests}; drained ${fmt((performance.now() - drainStart) / 1000, 1)} s after the load stopped`,
  );
  console.log(
    `garbage collections in the server: ${gcKinds}\n` +
      `notifications heard by ${SESSIONS} sessions: ${heard}; list_pending_events calls: ${reads}`,
  );
  console.log(
    `RSS per 5-minute block from minute ${TARGET.fromMinute} (high-water / median; V8 heap ` +
      `high-water; anonymous memory outside the heap, median), MB:\n` +
      blockStats
        .map(
          (b) =>
            `  min ${b.from}–${b.from + 5}: ${fmt(b.peak, 0)} / ${fmt(b.median, 0)}; heap ${fmt(b.heapPeak, 0)}; ` +
            `outside the heap ${fmt(b.native, 0)}`,
        )
        .join('\n'),
  );
  console.log(
    `RSS growth after minute ${TARGET.fromMinute}, last block against the first: high-water ` +
      `${fmt(growth, 1)} MB, median ${fmt(medianGrowth, 1)} MB (target ≤ ${TARGET.rssGrowthMB}: ` +
      `${growth <= TARGET.rssGrowthMB ? 'met' : Number.isNaN(growth) ? 'needs two blocks (≥ 10 minutes)' : 'MISSED'}); ` +
      `strict (highest sample after minute ${TARGET.fromMinute} − the sample at it) ${fmt(strict, 1)} MB; ` +
      `${fmt(rows[0]?.rss, 0)} MB at minute ${fmt(rows[0]?.minute, 1)}, ${fmt(final.rss, 0)} MB at the end; ` +
      `heap used ${fmt(heapRange[0], 0)}–${fmt(heapRange[1], 0)} MB`,
  );
  console.log(
    `webhook p99 under the mixed load (windows from minute 1): median ${fmt(medianP99, 2)} ms, ` +
      `worst ${fmt(worstP99, 2)} ms (target ≤ ${TARGET.p99Ms}: ${worstP99 <= TARGET.p99Ms ? 'met' : 'MISSED'})` +
      (baseline
        ? `; ingest alone, same rate, same run: worst window ${fmt(baseline.p99, 2)} ms`
        : ''),
  );
  if (total !== okAnswers || acked !== total) {
    console.log('LOST OR UNFINISHED EVENTS: see the counts above');
    process.exitCode = 1;
  }
}
