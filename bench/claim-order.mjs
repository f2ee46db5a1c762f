// The cost of "one object, one order" in a claim (src/buffer/object-order.ts): with 100 000
// pending events, how long one claim takes on SQLite and on Redis when every event is about its
// own object, when a tenth of them come in chains of five about one object, and in the worst case
// the rule allows: the oldest 1 000 due events all held back behind one claimed event, so each
// claim looks through ORDER_SCAN candidates before it finds one it may take.
//
//   npm run build && node bench/claim-order.mjs [--pending 100000] [--claims 300] [--stores sqlite,redis]
//                                               [--dist <another build's dist/>]
//
// Each claim takes one event (limit 1) and the event is acked at once (not timed), as a worker does.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
// --dist <dir>: another build (e.g. one without the rule) to measure against, same scenarios.
const DIST = arg('--dist', null);
const dist = (file) =>
  DIST
    ? pathToFileURL(path.resolve(DIST, file)).href
    : new URL(`../dist/${file}`, import.meta.url).href;
const { SqliteBuffer } = await import(dist('buffer/sqlite/store.js'));
const { openRedisBuffer } = await import(dist('buffer/redis/store.js'));
const PENDING = Number(arg('--pending', 100_000));
const CLAIMS = Number(arg('--claims', 300));
const STORES = arg('--stores', 'sqlite,redis').split(',');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

const payload = (id, obj) =>
  JSON.stringify({
    id,
    object: 'event',
    type: 'customer.subscription.updated',
    data: { object: { id: obj, pad: 'x'.repeat(600) } },
  });

/** The object of event i in each scenario. */
const SCENARIOS = {
  'each event its own object': (i) => `sub_own_${i}`,
  'a tenth in chains of five about one object': (i) =>
    i % 10 === 0 ? `sub_chain_${Math.floor(i / 50)}` : `sub_own_${i}`,
  'worst case: the oldest 1 000 held back behind one claim': (i) =>
    i < 1000 ? 'sub_hot' : `sub_own_${i}`,
};

async function fill(buffer, objectOf) {
  for (let i = 0; i < PENDING; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(PENDING, i + 500); j++) {
      const id = `evt_bench_${String(j).padStart(7, '0')}`;
      const obj = objectOf(j);
      batch.push(
        buffer.append({
          id,
          type: 'customer.subscription.updated',
          created: 1_790_000_000 + j,
          livemode: false,
          objectId: obj,
          payload: payload(id, obj),
        }),
      );
    }
    await Promise.all(batch);
  }
}

async function measure(buffer, worst) {
  if (worst) {
    // The hot object's oldest event is claimed and held: the 999 after it wait.
    await buffer.claim({ owner: 'holder', leaseMs: 3_600_000, limit: 1 });
  }
  const times = [];
  for (let n = 0; n < CLAIMS; n++) {
    const t0 = performance.now();
    const [e] = await buffer.claim({ owner: 'bench', leaseMs: 60_000, limit: 1 });
    times.push(performance.now() - t0);
    if (!e) throw new Error('nothing claimable');
    await buffer.ack(e.id, { token: e.leaseOwner });
  }
  times.sort((a, b) => a - b);
  return {
    median: times[Math.floor(times.length / 2)],
    p95: times[Math.floor(times.length * 0.95)],
  };
}

console.log(
  `machine: ${os.cpus()[0]?.model} · ${os.cpus().length} cores · node ${process.version} · ${new Date().toISOString()} · load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(`${PENDING} pending events, ${CLAIMS} claims of one event each\n`);
console.log('| store | scenario | claim median (ms) | claim p95 (ms) |');
console.log('| --- | --- | ---: | ---: |');
for (const store of STORES) {
  for (const [name, objectOf] of Object.entries(SCENARIOS)) {
    let buffer;
    let cleanup;
    if (store === 'sqlite') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sem-bench-order-'));
      buffer = new SqliteBuffer({ file: path.join(dir, 'events.db'), maxPending: PENDING * 2 });
      cleanup = async () => {
        await buffer.close();
        fs.rmSync(dir, { recursive: true, force: true });
      };
    } else {
      const prefix = `sem-bench-order:${crypto.randomBytes(4).toString('hex')}:`;
      buffer = await openRedisBuffer({ url: REDIS_URL, prefix, maxPending: PENDING * 2 });
      cleanup = async () => {
        // Deleting the bench's keys: scan its prefix only.
        const { Redis } = await import('ioredis');
        const client = new Redis(REDIS_URL);
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await client.unlink(...keys);
        } while (cursor !== '0');
        client.disconnect();
        await buffer.close();
      };
    }
    await fill(buffer, objectOf);
    const r = await measure(buffer, name.startsWith('worst'));
    console.log(`| ${store} | ${name} | ${r.median.toFixed(2)} | ${r.p95.toFixed(2)} |`);
    await cleanup();
  }
}
