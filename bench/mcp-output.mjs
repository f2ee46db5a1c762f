// What the MCP surface costs a model, in characters: list_pending_events per event (its text
// content, which is what a client puts in the model's context), the stripe-events://pending
// resource at 100 events, get_event, and tools/list. The same-run baseline is the agent loop's own
// rendering of the same events (src/catalog/prompt.ts), one fenced block per event. Events are
// every catalog type's fixture in turn, so a page mixes disputes, refunds, invoices, ….
//
//   npx tsc -p . && node bench/mcp-output.mjs [--events 100]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { openSqliteBuffer } from '../dist/buffer/sqlite/store.js';
import { createCatalog } from '../dist/catalog/catalog.js';
import { renderEventForPrompt } from '../dist/catalog/prompt.js';
import { createLogger } from '../dist/logger.js';
import { createMcpServer } from '../dist/mcp/server.js';
import { createQueueOperations } from '../dist/operations/queue.js';
import { buildTestEvent } from '../dist/stripe/fixtures.js';

const args = process.argv.slice(2);
const at = args.indexOf('--events');
const N = at >= 0 ? Number(args[at + 1]) : 100;

const catalog = createCatalog();
const types = catalog.entries().map((d) => d.type);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sem-bench-output-'));
const buffer = openSqliteBuffer(dir);

const payloads = [];
for (let i = 0; i < N; i++) {
  const event = buildTestEvent(types[i % types.length]);
  const object = event.data.object;
  await buffer.append({
    id: event.id,
    type: event.type,
    created: event.created,
    livemode: event.livemode,
    objectId: typeof object.id === 'string' ? object.id : null,
    payload: JSON.stringify(event),
  });
  payloads.push(event);
}

const server = createMcpServer({
  buffer,
  operations: createQueueOperations({ store: buffer }),
  catalog,
  redact: [],
  logger: createLogger({ level: 'silent' }),
});
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(serverSide);
const client = new Client({ name: 'bench-mcp-output', version: '1.0.0' });
await client.connect(clientSide);

const textOf = (result) =>
  result.content
    .map((c) => (c.type === 'text' ? c.text : ''))
    .filter(Boolean)
    .join('\n');
const fenceTags = (text) =>
  (text.match(/<\/?untrusted-data-[0-9a-f]{16}>/g) ?? []).reduce((n, t) => n + t.length, 0);
const fences = (text) => (text.match(/<untrusted-data-[0-9a-f]{16}>/g) ?? []).length;
const pct = (a, b) => `${((a / b) * 100).toFixed(0)} %`;

// The baseline: the agent loop's rendering of the same events, one fenced block each.
const loop = payloads.map((e) => renderEventForPrompt(catalog, { ...e, payload: e }).text);
const loopChars = loop.reduce((n, t) => n + t.length, 0);

const rows = [];
const row = (what, chars, events, text) =>
  rows.push({
    what,
    chars,
    perEvent: events ? Math.round(chars / events) : null,
    fences: text === undefined ? null : fences(text),
    tags: text === undefined ? null : pct(fenceTags(text), chars),
  });

row(`agent loop rendering (baseline), ${N} events`, loopChars, N, loop.join('\n'));

const page = await client.callTool({ name: 'list_pending_events', arguments: { limit: 20 } });
const pageText = textOf(page);
row('list_pending_events, limit 20: text content', pageText.length, 20, pageText);
const structured = JSON.stringify(page.structuredContent);
row('list_pending_events, limit 20: structuredContent', structured.length, 20, structured);

const resource = await client.readResource({ uri: 'stripe-events://pending' });
const body = resource.contents[0].text;
const shown = Math.min(N, 100);
row(`stripe-events://pending, ${shown} events`, body.length, shown, body);

const dispute = payloads.find((e) => e.type === 'charge.dispute.created') ?? payloads[0];
const got = await client.callTool({ name: 'get_event', arguments: { id: dispute.id } });
const gotText = textOf(got);
row(`get_event (${dispute.type}): text content`, gotText.length, 1, gotText);
const loopOne = renderEventForPrompt(catalog, { ...dispute, payload: dispute }).text;
row(`agent loop rendering of that event`, loopOne.length, 1, loopOne);

const listed = await client.listTools();
const toolsJson = JSON.stringify(listed.tools);
const outputSchemas = listed.tools.reduce(
  (n, t) => n + (t.outputSchema ? JSON.stringify(t.outputSchema).length : 0),
  0,
);
rows.push({
  what: `tools/list (${listed.tools.length} tools)`,
  chars: toolsJson.length,
  perEvent: null,
  fences: null,
  tags: `output schemas ${pct(outputSchemas, toolsJson.length)}`,
});

console.log(
  `machine: ${os.cpus()[0]?.model} · ${os.cpus().length} cores · node ${process.version} · ${new Date().toISOString()}`,
);
console.log('');
console.log('| output | chars | chars per event | fences | share |');
console.log('| --- | ---: | ---: | ---: | --- |');
for (const r of rows) {
  console.log(
    `| ${r.what} | ${r.chars} | ${r.perEvent ?? ''} | ${r.fences ?? ''} | ${r.tags ?? ''} |`,
  );
}
console.log('');
console.log(
  'share: characters spent on untrusted-data tags (or, for tools/list, on output schemas)',
);

await client.close();
await server.close();
buffer.close();
fs.rmSync(dir, { recursive: true, force: true });
