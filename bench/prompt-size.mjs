// Prompt size of the catalog's compact, fenced rendering vs the common hand-written prompt
// ("A Stripe <type> event occurred. Decide on next action." + the whole data.object as JSON),
// per catalog type and in total, in characters and in tokens (Anthropic's offline tokenizer,
// an approximation for current models). Also checks that every fact of the tool call is present.
//
//   npm run build && node bench/prompt-size.mjs [--reference ../shared/reference/events]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { countTokens } from '@anthropic-ai/tokenizer';
import { createCatalog } from '../dist/catalog/catalog.js';
import { naivePrompt, renderEventForPrompt } from '../dist/catalog/prompt.js';
import { buildTestEvent } from '../dist/stripe/fixtures.js';

const args = process.argv.slice(2);
const refIndex = args.indexOf('--reference');
const referenceDir = refIndex >= 0 ? args[refIndex + 1] : null;

const catalog = createCatalog();

function sources(type) {
  const out = [['fixture', buildTestEvent(type)]];
  const file = referenceDir && path.join(referenceDir, `${type}.json`);
  if (file && fs.existsSync(file))
    out.push(['reference', JSON.parse(fs.readFileSync(file, 'utf8'))]);
  return out;
}

function factsPresent(text, facts) {
  for (const [key, value] of Object.entries(facts)) {
    const empty = value === null || (Array.isArray(value) && value.length === 0);
    if (key === 'currency') continue;
    if (empty ? !new RegExp(`not set: .*\\b${key}\\b`).test(text) : !text.includes(`${key}: `))
      return key;
  }
  return null;
}

const rows = [];
const totals = {};
for (const def of catalog.entries()) {
  for (const [source, event] of sources(def.type)) {
    const ours = renderEventForPrompt(catalog, { ...event, payload: event }).text;
    const naive = naivePrompt(event.type, event.data.object);
    const missing = factsPresent(ours, catalog.toolCall(def.type, event).input);
    const row = {
      type: def.type,
      source,
      ourChars: ours.length,
      naiveChars: naive.length,
      ourTokens: countTokens(ours),
      naiveTokens: countTokens(naive),
      missing: missing ?? '-',
    };
    rows.push(row);
    const t = (totals[source] ??= { ourChars: 0, naiveChars: 0, ourTokens: 0, naiveTokens: 0 });
    for (const k of Object.keys(t)) t[k] += row[k];
  }
}

const pct = (a, b) => `${((a / b) * 100).toFixed(1)}%`;
console.log(
  `machine: ${os.cpus()[0]?.model} · ${os.cpus().length} cores · node ${process.version} · ${new Date().toISOString()}`,
);
console.log('');
console.log(
  '| type | source | ours chars | dump chars | chars % | ours tokens | dump tokens | tokens % | fact missing |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) {
  console.log(
    `| ${r.type} | ${r.source} | ${r.ourChars} | ${r.naiveChars} | ${pct(r.ourChars, r.naiveChars)} | ${r.ourTokens} | ${r.naiveTokens} | ${pct(r.ourTokens, r.naiveTokens)} | ${r.missing} |`,
  );
}
for (const [source, t] of Object.entries(totals)) {
  console.log(
    `| **total** | ${source} | ${t.ourChars} | ${t.naiveChars} | **${pct(t.ourChars, t.naiveChars)}** | ${t.ourTokens} | ${t.naiveTokens} | **${pct(t.ourTokens, t.naiveTokens)}** | |`,
  );
}
const worst = Math.max(...Object.values(totals).map((t) => t.ourChars / t.naiveChars));
console.log('');
console.log(
  `target ≤ 35 % of the dump in total: ${worst <= 0.35 ? 'met' : 'NOT met'} (${(worst * 100).toFixed(1)} %)`,
);
if (rows.some((r) => r.missing !== '-')) {
  console.log('a fact is missing from a rendering: see the table');
  process.exitCode = 1;
}
