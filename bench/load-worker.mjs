// Load generator for bench/ingest.mjs, in its own process so it never shares an event loop with
// the server under test. Every request is a distinct, freshly signed charge.dispute.created event.
//
//   node bench/load-worker.mjs '{"url":"http://127.0.0.1:N","secret":"whsec_…","connections":32,
//                               "duration":10,"warmup":2}'
//
// stdout, one JSON line each: {"type":"measure-start"} when the counted phase begins, then
// {"type":"result", …}.
import autocannon from 'autocannon';
import Stripe from 'stripe';
import { buildTestEvent } from '../dist/stripe/fixtures.js';
import { percentile } from './server-harness.mjs';

const opts = JSON.parse(process.argv[2]);
const { url, secret, connections, duration, warmup } = opts;
const target = `${url.replace(/\/$/, '')}/stripe/webhook`;
// Cap on pre-signed requests for the counted phase: ~3.5 KB each, so 400k ≈ 1.4 GB.
const POOL_MAX = opts.poolMax ?? 400_000;

const emit = (record) => process.stdout.write(JSON.stringify(record) + '\n');

function signedRequest() {
  // Pretty-printed like Stripe's own deliveries (and `stripe-events-mcp trigger`).
  const payload = JSON.stringify(buildTestEvent('charge.dispute.created'), null, 2);
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
  return { body: Buffer.from(payload), header };
}

/**
 * One autocannon run. `next()` hands out the next unique {body, header}. Latencies are taken from
 * every response as float ms (autocannon's own histogram keeps whole ms, 2xx only).
 */
async function run(seconds, next) {
  const latencies = [];
  const perSecond = [];
  const answers = { queued: 0, duplicate: 0, other: 0 };
  const instance = autocannon({
    url: target,
    method: 'POST',
    connections,
    duration: seconds,
    timeout: 10,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    requests: [
      {
        setupRequest(req) {
          const { body, header } = next();
          req.body = body;
          req.headers = { ...req.headers, 'stripe-signature': header };
          return req;
        },
        onResponse(status, body) {
          if (status < 200 || status > 299) return;
          // Ours answers {"status":"queued"|"duplicate"}, the baseline {"duplicate":true} on a repeat.
          if (body.includes('duplicate')) answers.duplicate++;
          else if (body.includes('"queued"') || body === '{"received":true}') answers.queued++;
          else answers.other++;
        },
      },
    ],
  });
  const t0 = performance.now();
  instance.on('response', (_client, _status, _bytes, responseTime) => {
    latencies.push(responseTime);
    const second = Math.floor((performance.now() - t0) / 1000);
    perSecond[second] = (perSecond[second] ?? 0) + 1;
  });
  const result = await instance;
  const sorted = Float64Array.from(latencies).sort();
  return { result, sorted, answers, perSecond: Array.from(perSecond, (n) => n ?? 0) };
}

// Warm-up: signed on the fly (its throughput is not counted), which also sizes the pool below.
let warmupSigned = 0;
const warm = await run(warmup, () => {
  warmupSigned++;
  return signedRequest();
});

// Counted phase: pre-sign enough events that the load process does no crypto while measuring;
// 2.5x the warm-up rate (the warm-up runs cold and signs on the fly, so it undercounts), plus
// slack; sign on the fly only if the pool runs dry (reported as signedLive).
const warmRate = warm.result['2xx'] / Math.max(warm.result.duration, 0.001);
const poolSize = Math.min(
  POOL_MAX,
  Math.ceil(warmRate * duration * 2.5) + 20 * connections + 5_000,
);
const signStart = performance.now();
const pool = new Array(poolSize);
for (let i = 0; i < poolSize; i++) pool[i] = signedRequest();
const signMs = performance.now() - signStart;
let used = 0;
let signedLive = 0;

emit({ type: 'measure-start' });
const measured = await run(duration, () => {
  if (used < pool.length) {
    const r = pool[used];
    pool[used++] = undefined;
    return r;
  }
  signedLive++;
  return signedRequest();
});

const r = measured.result;
emit({
  type: 'result',
  durationS: r.duration,
  requestsPerSecMean: r.requests.mean,
  requestsTotal: r.requests.total,
  responsesPerSecond: measured.perSecond,
  ok2xx: r['2xx'],
  eventsPerSec: r['2xx'] / r.duration,
  latencyMs: {
    p50: percentile(measured.sorted, 50),
    p97_5: percentile(measured.sorted, 97.5),
    p99: percentile(measured.sorted, 99),
    max: measured.sorted.at(-1),
    responses: measured.sorted.length,
  },
  autocannonLatencyMs: { p50: r.latency.p50, p97_5: r.latency.p97_5, p99: r.latency.p99 },
  non2xx: r.non2xx,
  statusCodes: r.statusCodeStats,
  errors: r.errors,
  timeouts: r.timeouts,
  answers: measured.answers,
  pool: { size: poolSize, used: used + signedLive, signedLive, signMs: Math.round(signMs) },
  warmup: {
    durationS: warm.result.duration,
    ok2xx: warm.result['2xx'],
    non2xx: warm.result.non2xx,
    errors: warm.result.errors,
    timeouts: warm.result.timeouts,
    answers: warm.answers,
    signed: warmupSigned,
  },
});
