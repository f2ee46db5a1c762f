// Agent loop throughput against a fake Messages API that answers after a fixed 200 ms, at
// concurrency 1, 4, 16 and 64, next to the ideal (concurrency ÷ 0.2 s); and the input size of our
// requests against the common hand-written request (the whole data.object dumped into the prompt,
// the full tool schema), on the same events.
//
//   npm run build && node bench/agent.mjs [--per-worker 25] [--delay 200] [--concurrency 16,64]
//
// Every claim, renewal and outcome is a compare-and-set on the SQLite writer thread (group commit
// with whatever else is being written), so the loop's main thread never waits on an fsync.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { countTokens } from '@anthropic-ai/tokenizer';
import { recordSink } from '../dist/dispatch/dispatch.js';
import { AgentLoop } from '../dist/agent/loop.js';
import { SqliteBuffer } from '../dist/buffer/sqlite.js';
import { createCatalog } from '../dist/catalog/catalog.js';
import { toAnthropicTool } from '../dist/catalog/formats.js';
import { naivePrompt } from '../dist/catalog/prompt.js';
import { createLogger } from '../dist/logger.js';
import { buildTestEvent } from '../dist/stripe/fixtures.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const PER_WORKER = arg('--per-worker', 25);
const DELAY_MS = arg('--delay', 200);
const CONCURRENCIES = (() => {
  const i = process.argv.indexOf('--concurrency');
  return i >= 0 ? process.argv[i + 1].split(',').map(Number) : [1, 4, 16, 64];
})();

const catalog = createCatalog();
let inputChars = 0;
let requests = 0;

// The fake decides the first action of the offered tool; usage is about four characters a token.
const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    const body = JSON.parse(raw);
    requests += 1;
    inputChars += raw.length;
    const tool = body.tools[0];
    const reply = {
      id: `msg_${requests}`,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: [
        {
          type: 'tool_use',
          id: `toolu_${requests}`,
          name: tool.name,
          input: { action: tool.input_schema.properties.action.enum[0], rationale: 'Benchmark.' },
        },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: Math.ceil(raw.length / 4), output_tokens: 30 },
    };
    setTimeout(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply)),
      DELAY_MS,
    );
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const baseURL = `http://127.0.0.1:${server.address().port}`;
const types = catalog.entries().map((d) => d.type);

async function run(concurrency) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sem-bench-agent-'));
  const buffer = new SqliteBuffer({ file: path.join(dir, 'events.db') });
  const total = concurrency * PER_WORKER;
  for (let i = 0; i < total; i++) {
    const e = buildTestEvent(types[i % types.length]);
    await buffer.append({
      id: e.id,
      type: e.type,
      created: e.created,
      livemode: false,
      objectId: e.data.object.id,
      payload: JSON.stringify(e),
    });
  }
  const loop = new AgentLoop({
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
  const rate = total / seconds;
  const ideal = concurrency / (DELAY_MS / 1000);
  return { concurrency, total, seconds, rate, ideal };
}

console.log(
  `machine: ${os.cpus()[0]?.model} · ${os.cpus().length} cores · node ${process.version} · ${new Date().toISOString()}`,
);
console.log(`fake API delay ${DELAY_MS} ms, ${PER_WORKER} events per worker\n`);
console.log('| concurrency | events | seconds | events/s | ideal events/s | % of ideal |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
for (const c of CONCURRENCIES) {
  const r = await run(c);
  console.log(
    `| ${c} | ${r.total} | ${r.seconds.toFixed(2)} | ${r.rate.toFixed(1)} | ${r.ideal.toFixed(1)} | ${((r.rate / r.ideal) * 100).toFixed(1)}% |`,
  );
}
const ourPerEvent = inputChars / requests;

// The hand-written baseline request for the same events: whole object dumped, full tool schema.
let naiveChars = 0;
let naiveTokens = 0;
let ourTokens = 0;
const { userMessage, SYSTEM_PROMPT } = await import('../dist/agent/prompt.js');
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
server.close();
