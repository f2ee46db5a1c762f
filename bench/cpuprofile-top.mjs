// Top self-time functions and packages of a V8 .cpuprofile (from `node --cpu-prof`).
//
//   node bench/cpuprofile-top.mjs <file.cpuprofile> [--top 25]
import fs from 'node:fs';
import { parseFlags } from './server-harness.mjs';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/cpuprofile-top.mjs <file.cpuprofile> [--top 25]\n');
  process.exit(2);
}
const top = Number(parseFlags(rest, { top: 'string' }).top ?? 25);
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));

// Self time per node: each sample lands on one node; timeDeltas[i] is the time before sample i.
const selfUs = new Map();
profile.samples.forEach((id, i) =>
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
);
const all = [...selfUs.values()].reduce((a, b) => a + b, 0);
// Percentages are of busy time: "(idle)" (waiting in the event loop) is reported on its own.
const idleIds = new Set(
  profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id),
);
const idleUs = [...idleIds].reduce((a, id) => a + (selfUs.get(id) ?? 0), 0);
const total = all - idleUs;

function where(url) {
  if (!url) return '(native/V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith('node:')) return 'node core';
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? `project ${url.slice(dist + 1)}` : url;
}

const byFn = new Map();
const byPkg = new Map();
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (!us || idleIds.has(node.id)) continue;
  const cf = node.callFrame;
  const pkg = where(cf.url);
  const key = `${cf.functionName || '(anonymous)'}  ${pkg}${cf.url ? ':' + (cf.lineNumber + 1) : ''}`;
  byFn.set(key, (byFn.get(key) ?? 0) + us);
  byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
}

const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
const print = (title, map, n) => {
  console.log(title);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n))
    console.log(`  ${pct(us)}  ${k}`);
};
console.log(
  `${file}: ${(all / 1e6).toFixed(1)} s sampled, ${(idleUs / 1e6).toFixed(1)} s idle; shares below are of the ${(total / 1e6).toFixed(1)} s busy`,
);
print('self time by package/area:', byPkg, 15);
print(`top ${top} functions by self time:`, byFn, top);
