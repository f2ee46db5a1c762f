// Agent loop throughput against a fake Messages API that answers after a fixed 200 ms, at
// concurrency 1, 4, 16 and 64, next to the ideal (concurrency ÷ 0.2 s) and next to the bare SDK
// client on the same fake in the same run: the same requests, already rendered, sent by C workers
// with nothing else to do (no store, no rendering, no validation, no dispatch). That client is the
// ceiling of this harness: what Node's fetch and the SDK cost per request on this machine. Also
// the input size of our requests against the common hand-written request (the whole data.object
// dumped into the prompt, the full tool schema), on the same events.
//
//   npm run build && node bench/agent.mjs [--per-worker 100] [--delay 200] [--concurrency 16,64]
//                                         [--rounds 1] [--modes plain,guarded,fresh]
//                                         [--stripe-delay 0]
//
// `guarded` runs the loop with every guardrail enforced and nothing tripping it: a daily budget in
// tokens and dollars (each Messages API request reserves its bound in the store and settles it)
// and a per-hour limit on every tool (each event reserves a slot in the store before it is
// decided, and confirms it before dispatch) — the store round trips every decision pays for them.
//
// `fresh` runs the loop as `plain` does, with the facts re-checked against a fake Stripe API
// (bench/fake-stripe-api.mjs, its own process, answering after --stripe-delay ms): every event's
// object is read before the model decides and again right before the dispatch — two reads per
// dispatched event through stripe-node, and the precondition checked each time.
//
// The fake runs in its own process (bench/fake-messages-api.mjs), as the real API does: its work
// is not on the event loop being measured. Every claim, renewal and outcome is a compare-and-set on
// the SQLite writer thread; a worker hands over its outcome's write and claims its next event at
// once, and the writer commits claims ahead of the fsync of outcomes.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { countTokens } from '@anthropic-ai/tokenizer';
import { recordSink } from '../dist/dispatch/dispatch.js';
import { AgentLoop } from '../dist/agent/loop.js';
import { Guardrails } from '../dist/agent/guardrails.js';
import { SqliteBuffer } from '../dist/buffer/sqlite/store.js';
import { createCatalog } from '../dist/catalog/catalog.js';
import { toAnthropicTool } from '../dist/catalog/formats.js';
import { naivePrompt } from '../dist/catalog/prompt.js';
import { createLogger } from '../dist/logger.js';
import { buildTestEvent } from '../dist/stripe/fixtures.js';
import { createStripeClient } from '../dist/stripe/client.js';
import { createObjectReader } from '../dist/stripe/objects.js';
import { createRecheck } from '../dist/operations/fresh.js';
import { userMessage, SYSTEM_PROMPT } from '../dist/agent/prompt.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const PER_WORKER = arg('--per-worker', 100);
const DELAY_MS = arg('--delay', 200);
const ROUNDS = arg('--rounds', 1);
const MODES = (() => {
  const i = process.argv.indexOf('--modes');
  return i >= 0 ? process.argv[i + 1].split(',') : ['plain', 'guarded'];
})();
const CONCURRENCIES = (() => {
  const i = process.argv.indexOf('--concurrency');
  return i >= 0 ? process.argv[i + 1].split(',').map(Number) : [1, 4, 16, 64];
})();

const STRIPE_DELAY_MS = arg('--stripe-delay', 0);
const catalog = createCatalog();
const types = catalog.entries().map((d) => d.type);

const fake = fork(
  fileURLToPath(new URL('./fake-messages-api.mjs', import.meta.url)),
  [String(DELAY_MS)],
  { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
);
const { port } = await new Promise((resolve, reject) => {
  fake.once('message', resolve);
  fake.once('exit', (code) => reject(new Error(`the fake API exited (${code})`)));
});
const baseURL = `http://127.0.0.1:${port}`;

const fakeStripe = MODES.includes('fresh')
  ? fork(
      fileURLToPath(new URL('./fake-stripe-api.mjs', import.meta.url)),
      [String(STRIPE_DELAY_MS)],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    )
  : null;
const stripeBase = fakeStripe
  ? await new Promise((resolve, reject) => {
      fakeStripe.once('message', ({ port: p }) => resolve(`http://127.0.0.1:${p}`));
      fakeStripe.once('exit', (code) => reject(new Error(`the fake Stripe API exited (${code})`)));
    })
  : null;
const stripeReads = async () =>
  stripeBase ? (await (await fetch(`${stripeBase}/_stats`)).json()).reads : 0;
const fakeStats = () => fetch(`${baseURL}/_stats`).then((r) => r.json());

/** Each event's object gets its own id, so the fake Stripe API serves each its own state. */
function storedEvent(i) {
  const e = buildTestEvent(types[i % types.length]);
  e.data.object.id = `${e.data.object.id}_${i}`;
  return {
    id: e.id,
    type: e.type,
    created: e.created,
    livemode: false,
    objectId: e.data.object.id,
    payload: JSON.stringify(e),
  };
}

/** The loop on a fresh SQLite store holding concurrency × PER_WORKER pending events. */
async function runLoop(concurrency, mode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sem-bench-agent-'));
  const buffer = new SqliteBuffer({ file: path.join(dir, 'events.db') });
  const total = concurrency * PER_WORKER;
  for (let i = 0; i < total; i += 256) {
    const chunk = [];
    const objects = {};
    for (let j = i; j < Math.min(total, i + 256); j++) {
      const stored = storedEvent(j);
      objects[stored.objectId] = JSON.parse(stored.payload).data.object;
      chunk.push(buffer.append(stored));
    }
    if (mode === 'fresh') {
      await fetch(`${stripeBase}/_objects`, { method: 'POST', body: JSON.stringify(objects) });
    }
    await Promise.all(chunk);
  }
  const recheck =
    mode === 'fresh'
      ? createRecheck(
          createObjectReader(
            createStripeClient({ secretKey: 'sk_test_bench', apiBase: stripeBase }),
          ),
        )
      : undefined;
  const guardrails =
    mode === 'guarded'
      ? new Guardrails(buffer.ledger, {
          budget: { daily_tokens: 1e12, daily_usd: 1e9 },
          limits: Object.fromEntries(catalog.entries().map((d) => [d.tool, { per_hour: 1e9 }])),
          price: (_model, u) => (u.input_tokens * 2 + u.output_tokens * 10) / 1e6,
        })
      : undefined;
  const loop = new AgentLoop({
    guardrails,
    buffer,
    catalog,
    client: new Anthropic({ apiKey: 'bench', baseURL, maxRetries: 0 }),
    sink: recordSink,
    logger: createLogger({ level: 'silent' }),
    model: 'claude-bench',
    concurrency,
    maxTurns: 2,
    maxTokens: 512,
    pollMs: 5,
    recheck,
  });
  const started = performance.now();
  loop.start();
  for (;;) {
    const { counts } = await buffer.stats();
    if (counts.acked === total) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  await loop.stop();
  await buffer.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return total / seconds;
}

/** The bare SDK client: the same number of requests of the same shape, rendered beforehand. */
async function runBare(concurrency) {
  const client = new Anthropic({ apiKey: 'bench', baseURL, maxRetries: 0 });
  const total = concurrency * PER_WORKER;
  const bodies = Array.from({ length: total }, (_, i) => {
    const e = buildTestEvent(types[i % types.length]);
    return {
      model: 'claude-bench',
      max_tokens: 512,
      system: SYSTEM_PROMPT,
      messages: [{ role: 'user', content: userMessage(catalog, { ...e, payload: e }, []) }],
      tools: [toAnthropicTool(catalog.lookup(e.type))],
    };
  });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await client.messages.create(bodies[next++]);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const pct = (rate, ideal) => `${((rate / ideal) * 100).toFixed(1)}%`;

console.log(
  `machine: ${os.cpus()[0]?.model} · ${os.cpus().length} cores · node ${process.version} · ${new Date().toISOString()}`,
);
console.log(
  `fake API delay ${DELAY_MS} ms (own process), ${PER_WORKER} events per worker, ${ROUNDS} round(s)\n`,
);
console.log(
  `| concurrency | events | ideal events/s | bare SDK client events/s | ${MODES.map((m) => `loop (${m}) events/s | % of ideal | % of bare client`).join(' | ')} |`,
);
console.log(`| ---: | ---: | ---: | ---: | ${MODES.map(() => '---: | ---: | ---:').join(' | ')} |`);
let loopRequests = 0;
let loopChars = 0;
for (const c of CONCURRENCIES) {
  const ideal = c / (DELAY_MS / 1000);
  const bare = [];
  const ours = Object.fromEntries(MODES.map((m) => [m, []]));
  const row = (label, b, o) =>
    `| ${label} | ${c * PER_WORKER} | ${ideal.toFixed(1)} | ${b.toFixed(1)} (${pct(b, ideal)}) | ${MODES.map((m) => `${o[m].toFixed(1)} | ${pct(o[m], ideal)} | **${pct(o[m], b)}**`).join(' | ')} |`;
  for (let round = 0; round < ROUNDS; round++) {
    bare.push(await runBare(c));
    for (const mode of MODES) {
      const s0 = await fakeStats();
      const r0 = await stripeReads();
      ours[mode].push(await runLoop(c, mode));
      const s1 = await fakeStats();
      if (mode === 'fresh') {
        const reads = (await stripeReads()) - r0;
        console.log(`  fresh at ${c}: ${reads} Stripe reads for ${c * PER_WORKER} events`);
      }
      loopRequests += s1.requests - s0.requests;
      loopChars += s1.inputChars - s0.inputChars;
    }
    if (ROUNDS > 1) {
      const last = Object.fromEntries(MODES.map((m) => [m, ours[m].at(-1)]));
      console.log(row(`${c} (round ${round + 1})`, bare.at(-1), last));
    }
  }
  const medians = Object.fromEntries(MODES.map((m) => [m, median(ours[m])]));
  console.log(row(`${c}${ROUNDS > 1 ? ' (median)' : ''}`, median(bare), medians));
}
const ourPerEvent = loopChars / loopRequests;

// One re-check on its own: a read through stripe-node and the precondition, back to back.
if (stripeBase) {
  const recheck = createRecheck(
    createObjectReader(createStripeClient({ secretKey: 'sk_test_bench', apiBase: stripeBase })),
  );
  const stored = storedEvent(0);
  await fetch(`${stripeBase}/_objects`, {
    method: 'POST',
    body: JSON.stringify({ [stored.objectId]: JSON.parse(stored.payload).data.object }),
  });
  const def = catalog.lookup(stored.type);
  for (let i = 0; i < 20; i++) await recheck.check(stored, def);
  const n = 500;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await recheck.check(stored, def);
  const each = (performance.now() - t0) / n;
  console.log(
    `\none re-check (read + precondition), sequential, fake Stripe delay ${STRIPE_DELAY_MS} ms: ${each.toFixed(2)} ms`,
  );
}

// The hand-written baseline request for the same events: whole object dumped, full tool schema.
let naiveChars = 0;
let naiveTokens = 0;
let ourTokens = 0;
for (const type of types) {
  const e = buildTestEvent(type);
  const def = catalog.lookup(type);
  const naive = JSON.stringify({
    model: 'claude-bench',
    max_tokens: 512,
    messages: [{ role: 'user', content: naivePrompt(type, e.data.object) }],
    tools: [toAnthropicTool(def)],
  });
  naiveChars += naive.length;
  naiveTokens += countTokens(naive);
  const ours = SYSTEM_PROMPT + userMessage(catalog, { ...e, payload: e }, []);
  ourTokens += countTokens(ours);
}
console.log('');
console.log(
  `input per event, ours (system + fenced compact event + 3 decision-only tools, as sent): ${Math.round(ourPerEvent)} chars ≈ ${Math.round(ourPerEvent / 4)} tokens (fake usage)`,
);
console.log(
  `input per event, whole-object dump + full tool schema: ${Math.round(naiveChars / types.length)} chars ≈ ${Math.round(naiveChars / types.length / 4)} tokens`,
);
console.log(
  `ours / dump: ${((ourPerEvent / (naiveChars / types.length)) * 100).toFixed(1)}% (chars)`,
);
console.log(
  `tokenizer (prompt text only, no tool schemas): ours ${Math.round(ourTokens / types.length)} vs dump ${Math.round(naiveTokens / types.length)} tokens per event`,
);
fake.kill();
fakeStripe?.kill();
