// Scale-out ingest: events/s and latency with the Redis store vs the SQLite store, one instance
// and two instances behind a round-robin load, in one run on one machine. Every request is a
// distinct, signed charge.dispute.created; the load runs in a separate process and alternates the
// target URL on every request (round robin).
//
//   npm run build && node bench/scaleout.mjs [--duration 10] [--warmup 2] [--connections 32]
//       [--phases sqlite-1,sqlite-2,redis-always-1,redis-always-2,redis-everysec-1,redis-everysec-2]
//       [--wait-idle <s>] [--json <file>]
//
// --wait-idle waits up to <s> seconds before each phase for other processes to go quiet (under
// 0.1 cores); the "others CPU" column says how much they used during each counted phase anyway.
//
// Redis phases run against a private redis-server this script starts on a free port with
// `--appendonly yes --appendfsync <always|everysec>` (so the durability compared is real; the
// machine's shared Redis is not touched). "sqlite-2" is two servers on one SQLite file (the same
// --data-dir), which is what two SQLite instances on one host can share.
//
// Shared helpers come from bench/server-harness.mjs; the load loop and the CPU meter here differ
// from bench/ingest.mjs's (several target URLs, one number per pid).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  getJson,
  parseFlags,
  spawnUntil,
  percentile,
  processCpuSeconds,
  stop,
  table,
  waitQuiet,
} from './server-harness.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const SECRET = 'whsec_bench_' + 'x'.repeat(32);

// ---------------------------------------------------------------------------------------------
// Load worker mode: `node bench/scaleout.mjs --worker '<json>'`.

if (process.argv[2] === '--worker') {
  await loadWorker(JSON.parse(process.argv[3]));
  process.exit(0);
}

async function loadWorker({ urls, secret, connections, duration, warmup }) {
  const { default: Stripe } = await import('stripe');
  const { buildTestEvent } = await import('../dist/stripe/fixtures.js');
  const emit = (record) => process.stdout.write(JSON.stringify(record) + '\n');
  const signed = () => {
    const payload = JSON.stringify(buildTestEvent('charge.dispute.created'), null, 2);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    return { body: Buffer.from(payload), header };
  };
  const targets = urls.map((url) => {
    const u = new URL(url);
    return {
      host: u.hostname,
      port: Number(u.port),
      agent: new http.Agent({ keepAlive: true, maxSockets: connections }),
    };
  });
  let rr = 0;

  function post(target, { body, header }) {
    return new Promise((resolve) => {
      const t0 = performance.now();
      const req = http.request(
        {
          host: target.host,
          port: target.port,
          path: '/stripe/webhook',
          method: 'POST',
          agent: target.agent,
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'content-length': body.length,
            'stripe-signature': header,
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode, text, ms: performance.now() - t0 }),
          );
        },
      );
      req.on('error', () => resolve({ status: 0, text: '', ms: performance.now() - t0 }));
      req.end(body);
    });
  }

  /** `connections` closed loops; each request goes to the next target in turn. */
  async function run(seconds, next) {
    const latencies = [];
    const counts = { ok: 0, queued: 0, other: 0, non2xx: 0, errors: 0 };
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const target = targets[rr++ % targets.length];
          const r = await post(target, next());
          latencies.push(r.ms);
          if (r.status === 0) counts.errors++;
          else if (r.status < 200 || r.status > 299) counts.non2xx++;
          else {
            counts.ok++;
            if (r.text.includes('"queued"')) counts.queued++;
            else counts.other++;
          }
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    return { latencies: Float64Array.from(latencies).sort(), counts, elapsed };
  }

  const warm = await run(warmup, signed);
  // Pre-sign the counted phase so the load process does no crypto while measuring.
  const rate = warm.counts.ok / Math.max(warm.elapsed, 0.001);
  const poolSize = Math.min(300_000, Math.ceil(rate * duration * 2.5) + 20 * connections + 5_000);
  const pool = Array.from({ length: poolSize }, signed);
  let used = 0;
  emit({ type: 'measure-start' });
  const measured = await run(duration, () => (used < pool.length ? pool[used++] : signed()));
  const l = measured.latencies;
  emit({
    type: 'result',
    elapsedS: measured.elapsed,
    eventsPerSec: measured.counts.ok / measured.elapsed,
    latencyMs: { p50: percentile(l, 50), p99: percentile(l, 99), max: l.at(-1) },
    counts: measured.counts,
    warmup: warm.counts,
    signedLive: Math.max(0, used - pool.length),
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers (copied from bench/server-harness.mjs: small, and this script must not move with it).

const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

const CLK_TCK = 100;

/** Busy CPU seconds of the whole machine so far (all cores, /proc/stat). */
function machineBusySeconds() {
  const first = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system, , , irq, softirq, steal] = first
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/**
 * Cores used by each pid between start and stop, then (last) by every other process on the
 * machine: the noise indicator, since on a shared 2-core box a neighbour's burst skews a phase.
 */
function cpuMeter(pids) {
  const t0 = performance.now();
  const before = pids.map(processCpuSeconds);
  const busy0 = machineBusySeconds();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const own = pids.map((pid, i) => (processCpuSeconds(pid) - before[i]) / wall);
    const others = (machineBusySeconds() - busy0) / wall - own.reduce((a, b) => a + b, 0);
    return [...own, Math.max(0, others)];
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function startServer({ dataDir, extraArgs = [], env = {} }) {
  return spawnUntil(
    [
      CLI,
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--max-pending',
      '100000000',
      ...extraArgs,
    ],
    {
      env: { LOG_LEVEL: 'info', STRIPE_WEBHOOK_SECRET: SECRET, ...env },
      stream: 'stderr',
      ready: (line) => {
        try {
          const record = JSON.parse(line);
          return record.msg === 'listening' ? record.url : undefined;
        } catch {
          return undefined;
        }
      },
    },
  );
}

async function startRedis(fsync, dir) {
  const port = await freePort();
  const proc = await spawnUntil(
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes'].concat([
      '--appendfsync',
      fsync,
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
    ]),
    {
      command: 'redis-server',
      stream: 'stdout',
      ready: (line) => (/Ready to accept connections/.test(line) ? true : undefined),
    },
  );
  return { ...proc, url: `redis://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------
// The run.

const flags = parseFlags(process.argv.slice(2), {
  duration: 'string',
  warmup: 'string',
  connections: 'string',
  phases: 'string',
  'wait-idle': 'string',
  json: 'string',
});
const waitIdle = Number(flags['wait-idle'] ?? 0);
const duration = Number(flags.duration ?? 10);
const warmup = Number(flags.warmup ?? 2);
const connections = Number(flags.connections ?? 32);
const ALL = [
  'sqlite-1',
  'sqlite-2',
  'redis-always-1',
  'redis-always-2',
  'redis-everysec-1',
  'redis-everysec-2',
];
const phases = (flags.phases ?? ALL.join(',')).split(',');
for (const p of phases) {
  if (!ALL.includes(p)) {
    process.stderr.write(`unknown phase ${p}; known: ${ALL.join(', ')}\n`);
    process.exit(2);
  }
}
if (!fs.existsSync(CLI)) {
  process.stderr.write('dist/cli.js is missing: run `npm run build` first\n');
  process.exit(2);
}
if (
  phases.some((p) => p.startsWith('redis')) &&
  spawnSync('redis-server', ['--version']).status !== 0
) {
  process.stderr.write(
    'redis-server is not installed: the Redis phases need it (apt-get install redis-server)\n',
  );
  process.exit(2);
}

const cpuModel =
  /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
const redisVersion =
  spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? 'n/a';
console.log(
  `machine: ${cpuModel}, ${os.availableParallelism()} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB RAM; ` +
    `node ${process.version}; ${redisVersion}; ${new Date().toISOString()}`,
);
console.log(
  `load: ${connections} connections in one separate process, round robin over the instances per request, ` +
    `${warmup} s warm-up + ${duration} s counted; one distinct signed charge.dispute.created per request`,
);

async function runPhase(name) {
  const [store, fsyncOrCount, maybeCount] = name.split('-');
  const instances = Number(maybeCount ?? fsyncOrCount);
  const fsync = store === 'redis' ? fsyncOrCount : null;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `scaleout-${name}-`));
  let redis = null;
  const servers = [];
  try {
    const extraArgs = ['--store', store];
    const env = {};
    if (store === 'redis') {
      redis = await startRedis(fsync, tmp);
      env.REDIS_URL = redis.url;
    }
    // SQLite instances share one data dir (one file); Redis instances each get their own dir.
    for (let i = 0; i < instances; i++) {
      const dataDir = store === 'sqlite' ? tmp : fs.mkdtempSync(path.join(tmp, 'instance-'));
      servers.push(await startServer({ dataDir, extraArgs, env }));
    }
    const urls = servers.map((s) => s.value);
    process.stdout.write(`\n[${name}] ${instances} instance(s) at ${urls.join(', ')}; loading…\n`);
    const worker = spawn(
      process.execPath,
      [
        fileURLToPath(import.meta.url),
        '--worker',
        JSON.stringify({ urls, secret: SECRET, connections, duration, warmup }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const pids = [...servers.map((s) => s.pid), ...(redis ? [redis.pid] : []), worker.pid];
    let meter = null;
    let cpu = null;
    let result = null;
    await new Promise((resolve, reject) => {
      readline.createInterface({ input: worker.stdout }).on('line', (line) => {
        const record = JSON.parse(line);
        if (record.type === 'measure-start') meter = cpuMeter(pids);
        if (record.type === 'result') {
          cpu = meter?.() ?? null;
          result = record;
        }
      });
      worker.once('exit', (code) =>
        code === 0 && result ? resolve() : reject(new Error(`worker exited ${code}`)),
      );
    });
    const cores = {
      servers: cpu.slice(0, servers.length).reduce((a, b) => a + b, 0),
      redis: redis ? cpu[servers.length] : null,
      load: cpu.at(-2),
      others: cpu.at(-1),
    };
    // Durability: every 2xx was `queued` (distinct events) and the store holds at least that
    // many. Refusals (503) are counted apart: they lose nothing, Stripe delivers them again.
    const health = await getJson(`${urls[0]}/healthz`);
    const answered = result.counts.ok + result.warmup.ok;
    const queuedAnswers = result.counts.queued + result.warmup.queued;
    const check = {
      allQueued: queuedAnswers === answered,
      stored: health.body.pending >= answered,
    };
    const ok = Object.values(check).every(Boolean);
    const l = result.latencyMs;
    console.log(
      `[${name}] ${fmt(result.eventsPerSec, 0)} events/s, p50 ${fmt(l.p50, 2)} ms, p99 ${fmt(l.p99, 2)} ms, ` +
        `max ${fmt(l.max, 1)} ms; non-2xx ${result.counts.non2xx}, errors ${result.counts.errors}; ` +
        `CPU cores: servers ${fmt(cores.servers, 2)}, redis ${fmt(cores.redis, 2)}, load ${fmt(cores.load, 2)}, ` +
        `other processes ${fmt(cores.others, 2)}; ` +
        `check ${ok ? 'PASS' : 'FAIL'} (answered ${answered}, stored pending ${health.body.pending})`,
    );
    return { name, store, fsync, instances, result, cores, check, ok };
  } finally {
    for (const s of servers) await stop(s);
    if (redis) await stop(redis);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const results = [];
for (const phase of phases) {
  if (waitIdle > 0) {
    const others = await waitQuiet(waitIdle);
    if (others >= 0.1) console.log(`\n[${phase}] ${fmt(others, 2)} cores still busy elsewhere`);
  }
  results.push(await runPhase(phase));
}

const sqlite1 = results.find((r) => r.name === 'sqlite-1');
const rows = [
  [
    'phase',
    'store',
    'instances',
    'events/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'vs sqlite-1',
    'non-2xx',
    'servers CPU',
    'redis CPU',
    'others CPU',
    'check',
  ],
];
for (const r of results) {
  rows.push([
    r.name,
    r.store === 'redis' ? `redis (appendfsync ${r.fsync})` : 'sqlite (WAL, synchronous=FULL)',
    r.instances,
    fmt(r.result.eventsPerSec, 0),
    fmt(r.result.latencyMs.p50, 2),
    fmt(r.result.latencyMs.p99, 2),
    fmt(r.result.latencyMs.max, 1),
    sqlite1 ? fmt(r.result.eventsPerSec / sqlite1.result.eventsPerSec, 2) + 'x' : 'n/a',
    r.result.counts.non2xx + r.result.counts.errors,
    fmt(r.cores.servers, 2),
    fmt(r.cores.redis, 2),
    fmt(r.cores.others, 2),
    r.ok ? 'PASS' : 'FAIL',
  ]);
}
console.log('\n' + table(rows));
if (flags.json)
  fs.writeFileSync(flags.json, JSON.stringify({ connections, duration, warmup, results }, null, 2));
if (results.some((r) => !r.ok)) process.exitCode = 1;
