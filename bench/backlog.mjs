// A large backlog: fill a SQLite store with 1 000 000 events through SqliteBuffer, ack the oldest
// ~10%, then measure server start-up, server RSS, and list/stats latency on the full store, each
// next to a same-run baseline (bare Node server start-up, empty store).
//
//   npm run build && node bench/backlog.mjs [--events 1000000] [--ack-fraction 0.1] [--runs 5]
//       [--reuse <dir>] [--keep] [--json <file>]
//
// --reuse <dir>: use <dir>/events.db if it exists (no fill), else fill it there and keep it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteBuffer, SqliteBuffer } from '../dist/buffer/sqlite/store.js';
import { encodeCursor } from '../dist/buffer/cursor.js';
import { createCatalog } from '../dist/catalog/catalog.js';
import { buildTestEvent } from '../dist/stripe/fixtures.js';
import {
  assertBuilt,
  backgroundLoad,
  CLI,
  fmt,
  getJson,
  machine,
  median,
  parseFlags,
  printMachine,
  rssMB,
  spawnUntil,
  startOurServer,
  stop,
  table,
  tmpDir,
} from './server-harness.mjs';

const flags = parseFlags(process.argv.slice(2), {
  events: 'string',
  'ack-fraction': 'string',
  runs: 'string',
  reuse: 'string',
  keep: 'boolean',
  json: 'string',
});
const EVENTS = Number(flags.events ?? 1_000_000);
const ACK_FRACTION = Number(flags['ack-fraction'] ?? 0.1);
const RUNS = Number(flags.runs ?? 5);
const BATCH = 5_000;
const PAYLOAD_TARGET = 1_000;
const SECRET = 'whsec_bench_' + 'x'.repeat(32);
const TARGET = { startupMs: 3_000, rssMB: 200, firstPageMs: 10 };

assertBuilt();
const info = machine();
printMachine(info);
const idle = await backgroundLoad(2000);
console.log(
  `background CPU before the run (other processes): ${fmt(idle, 2)} cores of ${info.cores}`,
);
if (idle > 0.1) console.log('WARNING: the machine is not idle; timings will be skewed');

// ---------------------------------------------------------------------------------------------
// Fill

/**
 * A ~1 KB compact event per catalog type: the fixture's envelope with as many of its object's
 * fields as fit, so the payloads are real Stripe shapes rather than padding.
 */
const CATALOG_TYPES = createCatalog()
  .entries()
  .map((entry) => entry.type);

function templates() {
  return CATALOG_TYPES.map((type) => {
    const event = buildTestEvent(type);
    const full = event.data.object;
    const object = {};
    event.data = { object };
    for (const [key, value] of Object.entries(full)) {
      object[key] = value;
      if (JSON.stringify(event).length > PAYLOAD_TARGET) delete object[key];
    }
    event.id = '@@ID@@';
    const [head, tail] = JSON.stringify(event).split('@@ID@@');
    return {
      type,
      created: event.created,
      livemode: event.livemode,
      objectId: full.id,
      head,
      tail,
    };
  });
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function eventId() {
  const bytes = randomBytes(24);
  let s = 'evt_';
  for (let i = 0; i < 24; i++) s += BASE62[bytes[i] % 62];
  return s;
}

async function fill(dir) {
  const tpl = templates();
  const buffer = openSqliteBuffer(dir, { commitMode: 'group' });
  const ackCount = Math.round(EVENTS * ACK_FRACTION);
  const toAck = [];
  let payloadBytes = 0;
  const t0 = performance.now();
  for (let done = 0; done < EVENTS;) {
    const n = Math.min(BATCH, EVENTS - done);
    const appends = new Array(n);
    for (let j = 0; j < n; j++) {
      const t = tpl[(done + j) % tpl.length];
      const id = eventId();
      const payload = t.head + id + t.tail;
      payloadBytes += payload.length;
      if (done + j < ackCount) toAck.push(id);
      // Not awaited one by one: the group commit turns each batch into one transaction.
      appends[j] = buffer.append({
        id,
        type: t.type,
        created: t.created,
        livemode: t.livemode,
        objectId: t.objectId,
        payload,
      });
    }
    const results = await Promise.all(appends);
    if (results.some((r) => r.status !== 'queued')) throw new Error('an append was not queued');
    done += n;
    if (done % 100_000 === 0) process.stdout.write(`  filled ${done}\n`);
  }
  const fillS = (performance.now() - t0) / 1000;
  // The oldest first, like a consumer working the queue in order.
  const t1 = performance.now();
  for (const id of toAck) await buffer.ack(id);
  const ackS = (performance.now() - t1) / 1000;
  const t2 = performance.now();
  await buffer.close();
  const closeS = (performance.now() - t2) / 1000;
  return {
    events: EVENTS,
    fillS,
    fillRate: EVENTS / fillS,
    avgPayloadBytes: payloadBytes / EVENTS,
    acked: toAck.length,
    ackS,
    ackRate: toAck.length / ackS,
    closeS,
  };
}

function storeFacts(dir) {
  const file = path.join(dir, 'events.db');
  const db = new Database(file, { readonly: true });
  const facts = {
    rows: db.prepare('SELECT count(*) FROM events').pluck().get(),
    maxSeq: db.prepare('SELECT max(seq) FROM events').pluck().get() ?? 0,
    counts: Object.fromEntries(
      db.prepare('SELECT status, sum(n) FROM counts GROUP BY status').raw().all(),
    ),
    avgPayloadBytes: db
      .prepare('SELECT avg(length(payload)) FROM (SELECT payload FROM events LIMIT 10000)')
      .pluck()
      .get(),
  };
  db.close();
  facts.fileMB = fs.statSync(file).size / 2 ** 20;
  return facts;
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** Drops one file's pages from the OS cache (posix_fadvise DONTNEED via GNU dd): a cold read. */
function evictFromPageCache(file) {
  try {
    execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
    return true;
  } catch {
    return false;
  }
}

// The MCP SDK client, when this checkout has it: list pages then go through the server's
// list_pending_events tool; without it, /metrics (the other read of the store) stands in.
const mcpSdk = await Promise.all([
  import('@modelcontextprotocol/sdk/client/index.js'),
  import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
]).catch(() => null);

/** 20 list_pending_events pages of 20 over MCP, following next_cursor; ms per call. */
async function mcpListPages(url) {
  const [{ Client }, { StreamableHTTPClientTransport }] = mcpSdk;
  const client = new Client({ name: 'backlog-bench', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  const ms = [];
  let cursor;
  try {
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const r = await client.callTool({
        name: 'list_pending_events',
        arguments: { limit: 20, ...(cursor ? { cursor } : {}) },
      });
      ms.push(performance.now() - t);
      if (r.isError || !Array.isArray(r.structuredContent?.events)) {
        throw new Error(`list_pending_events failed: ${JSON.stringify(r.content)}`);
      }
      cursor = r.structuredContent.next_cursor;
    }
  } finally {
    await client.close();
  }
  return ms;
}

async function serverRun(dataDir) {
  const server = await startOurServer({ dataDir, secret: SECRET });
  try {
    const rssReady = rssMB(server.pid);
    const healthMs = [];
    let health;
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      health = await getJson(`${server.value}/healthz`);
      healthMs.push(performance.now() - t);
    }
    let listMs = null;
    if (mcpSdk) listMs = await mcpListPages(server.value);
    else for (let i = 0; i < 20; i++) await (await fetch(`${server.value}/metrics`)).text();
    return {
      readyMs: server.readyMs,
      rssReady,
      rssAfter: rssMB(server.pid),
      healthMs: median(healthMs),
      firstListMs: listMs?.[0],
      listMedianMs: listMs ? median(listMs) : undefined,
      pending: health.body.pending,
    };
  } finally {
    await stop(server);
  }
}

async function bareNodeRun() {
  const p = await spawnUntil(
    ['-e', "require('http').createServer().listen(0, () => console.error('ready'))"],
    {
      stream: 'stderr',
      ready: (line) => (line === 'ready' ? true : undefined),
    },
  );
  const rss = rssMB(p.pid);
  p.child.kill('SIGKILL');
  await p.exited;
  return { readyMs: p.readyMs, rssReady: rss };
}

async function time(fn) {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}

async function timeMedian(fn, n = 100) {
  const ms = [];
  for (let i = 0; i < n; i++) ms.push((await time(fn)).ms);
  return median(ms);
}

/** List/stats latency in this process on a fresh SqliteBuffer over `file`. */
async function queryLatency(file, maxSeq, { cold }) {
  const evicted = cold ? evictFromPageCache(file) : false;
  const open = await time(() => new SqliteBuffer({ file }));
  const buffer = open.value;
  const pending = { statuses: ['pending'], limit: 20 };
  const middle = { ...pending, cursor: encodeCursor(Math.floor(maxSeq / 2)) };
  const byType = { ...pending, types: [CATALOG_TYPES[0]] };
  // A type with no pending events: the (status, seq) index cannot skip other types, so this is
  // the cost of listing a rare type.
  const absentType = { ...pending, types: ['customer.created'] };
  const first = await time(() => buffer.list(pending));
  const firstStats = await time(() => buffer.stats());
  const firstAbsent = await time(() => buffer.list(absentType));
  const out = {
    evicted,
    openMs: open.ms,
    firstPageMs: first.ms,
    firstPageEvents: first.value.events.length,
    firstStatsMs: firstStats.ms,
    firstAbsentTypeMs: firstAbsent.ms,
  };
  if (!cold) {
    out.pageMedianMs = await timeMedian(() => buffer.list(pending));
    out.middlePageMedianMs = await timeMedian(() => buffer.list(middle));
    out.typePageMedianMs = await timeMedian(() => buffer.list(byType));
    out.absentTypeMedianMs = await timeMedian(() => buffer.list(absentType), 5);
    out.statsMedianMs = await timeMedian(() => buffer.stats());
  }
  await buffer.close();
  return out;
}

function cliListMs(dataDir) {
  const t = performance.now();
  execFileSync(
    process.execPath,
    [
      CLI,
      'events',
      'list',
      '--status',
      'pending',
      '--limit',
      '20',
      '--json',
      '--data-dir',
      dataDir,
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return performance.now() - t;
}

// ---------------------------------------------------------------------------------------------

const reuseDir = flags.reuse ? path.resolve(flags.reuse) : null;
const dir = reuseDir ?? tmpDir('backlog-');
const file = path.join(dir, 'events.db');
let fillResult = null;
if (reuseDir && fs.existsSync(file)) {
  console.log(`reusing ${file} (no fill)`);
} else {
  console.log(
    `filling ${file} with ${EVENTS} events (${BATCH} concurrent appends per await), acking the oldest ${ACK_FRACTION * 100}%…`,
  );
  fillResult = await fill(dir);
}
const facts = storeFacts(dir);
console.log(
  `store: ${facts.rows} events, ${fmt(facts.fileMB, 0)} MB file, avg payload ${fmt(facts.avgPayloadBytes, 0)} B, counts ${JSON.stringify(facts.counts)}`,
);
if (fillResult) {
  console.log(
    `fill: ${fmt(fillResult.fillS, 1)} s = ${fmt(fillResult.fillRate, 0)} events/s; ack ${fillResult.acked} one by one: ` +
      `${fmt(fillResult.ackS, 1)} s = ${fmt(fillResult.ackRate, 0)} acks/s; close ${fmt(fillResult.closeS, 2)} s`,
  );
}

const emptyDir = tmpDir('backlog-empty-');
// One throwaway open creates the empty store, so every timed run opens an existing file.
await openSqliteBuffer(emptyDir).close();

console.log(
  `\nstart-up, ${RUNS} fresh child processes each (spawn → ready line); background CPU now ${fmt(await backgroundLoad(1000), 2)} cores…`,
);
const bare = [];
const empty = [];
const full = [];
for (let i = 0; i < RUNS; i++) {
  // Interleaved, so drift on the machine hits all three alike.
  bare.push(await bareNodeRun());
  empty.push(await serverRun(emptyDir));
  full.push(await serverRun(dir));
}
const cliMs = [cliListMs(dir), cliListMs(dir), cliListMs(dir)];

console.log('list/stats latency in-process…');
const coldFull = await queryLatency(file, facts.maxSeq, { cold: true });
const hotFull = await queryLatency(file, facts.maxSeq, { cold: false });
const hotEmpty = await queryLatency(path.join(emptyDir, 'events.db'), 0, { cold: false });

const startRow = (label, runs) => [
  label,
  fmt(median(runs.map((r) => r.readyMs)), 0),
  fmt(Math.max(...runs.map((r) => r.readyMs)), 0),
  fmt(median(runs.map((r) => r.rssReady)), 0),
  runs[0].rssAfter === undefined ? '-' : fmt(median(runs.map((r) => r.rssAfter)), 0),
  runs[0].healthMs === undefined ? '-' : fmt(median(runs.map((r) => r.healthMs)), 2),
  runs[0].firstListMs === undefined ? '-' : fmt(median(runs.map((r) => r.firstListMs)), 2),
  runs[0].listMedianMs === undefined ? '-' : fmt(median(runs.map((r) => r.listMedianMs)), 2),
];
console.log(
  '\n' +
    table([
      [
        'server start-up',
        'ready ms (median)',
        'ready ms (max)',
        'RSS ready MB',
        mcpSdk
          ? 'RSS after 20 healthz + 20 MCP list pages MB'
          : 'RSS after 20 healthz + 20 metrics MB',
        'healthz ms (median)',
        'MCP first page ms',
        'MCP page ms (median)',
      ],
      startRow('bare node http server', bare),
      startRow('ours, empty store', empty),
      startRow(`ours, ${facts.rows} events`, full),
    ]),
);
console.log(`healthz on the full store reports pending ${full[0].pending}`);
console.log(
  `CLI \`events list --status pending --limit 20 --json\` on the full store, wall time incl. node start: ${cliMs.map((m) => fmt(m, 0)).join(', ')} ms`,
);

const q = (v) => (v === undefined ? '-' : fmt(v, 3));
console.log(
  '\n' +
    table([
      [
        'in-process query (ms)',
        'open',
        'first page',
        'first stats',
        'page median',
        'middle-cursor median',
        'by-type median',
        'stats median',
        'absent type first',
        'absent type median',
      ],
      ...[
        ['empty store', hotEmpty],
        [
          `${facts.rows} events, file evicted from page cache${coldFull.evicted ? '' : ' (eviction FAILED)'}`,
          coldFull,
        ],
        [`${facts.rows} events, page cache warm`, hotFull],
      ].map(([label, r]) => [
        label,
        q(r.openMs),
        q(r.firstPageMs),
        q(r.firstStatsMs),
        q(r.pageMedianMs),
        q(r.middlePageMedianMs),
        q(r.typePageMedianMs),
        q(r.statsMedianMs),
        q(r.firstAbsentTypeMs),
        q(r.absentTypeMedianMs),
      ]),
    ]),
);
console.log(
  'page = list({statuses:[pending], limit:20}); middle-cursor = the same from a cursor at the middle seq; by-type = plus types:[' +
    CATALOG_TYPES[0] +
    '] (1 in 12 stored events); absent type = plus a type with no stored events; medians of 100 calls (absent type: 5)',
);

const worstStart = Math.max(...full.map((r) => r.readyMs));
const worstRss = Math.max(...full.flatMap((r) => [r.rssReady, r.rssAfter]));
const worstFirst = Math.max(coldFull.firstPageMs, hotFull.firstPageMs);
const verdict = (ok) => (ok ? 'PASS' : 'FAIL');
console.log(
  `\ntargets on ${facts.rows} events: start-up ≤ ${TARGET.startupMs} ms: ${verdict(worstStart <= TARGET.startupMs)} (worst ${fmt(worstStart, 0)} ms); ` +
    `RSS ≤ ${TARGET.rssMB} MB: ${verdict(worstRss <= TARGET.rssMB)} (worst ${fmt(worstRss, 0)} MB); ` +
    `first page ≤ ${TARGET.firstPageMs} ms: ${verdict(worstFirst <= TARGET.firstPageMs)} (worst ${fmt(worstFirst, 2)} ms, cold or warm)`,
);

if (flags.json) {
  fs.writeFileSync(
    flags.json,
    JSON.stringify(
      {
        machine: info,
        facts,
        fill: fillResult,
        startup: { bare, empty, full },
        cliMs,
        query: { coldFull, hotFull, hotEmpty },
      },
      null,
      2,
    ),
  );
}
fs.rmSync(emptyDir, { recursive: true, force: true });
if (!reuseDir && !flags.keep) fs.rmSync(dir, { recursive: true, force: true });
else console.log(`store kept in ${dir}`);
