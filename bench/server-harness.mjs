// Harness shared by the ingest and backlog benchmarks: child servers, RSS and CPU sampling,
// machine facts, flags, tables.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

export function assertBuilt() {
  if (!fs.existsSync(CLI)) {
    process.stderr.write('dist/cli.js is missing: run `npm run build` first\n');
    process.exit(2);
  }
}

/** `--name value` and `--flag` into an object; numbers stay strings (callers convert). */
export function parseFlags(argv, known) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    if (name === null || !(name in known)) {
      process.stderr.write(
        `unknown argument ${arg}; known: ${Object.keys(known)
          .map((k) => '--' + k)
          .join(' ')}\n`,
      );
      process.exit(2);
    }
    flags[name] = known[name] === 'boolean' ? true : argv[++i];
  }
  return flags;
}

export function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpu: model,
    cores: os.availableParallelism(),
    memGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
    project: projectVersion(),
  };
}

/** The commit the numbers belong to, and when dist/ was built (it is what actually runs). */
function projectVersion() {
  let commit = 'unknown';
  try {
    const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    commit = git('rev-parse', '--short', 'HEAD');
    if (git('status', '--porcelain', '--', 'src')) commit += ' + uncommitted src changes';
  } catch {
    // not a git checkout
  }
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtime.toISOString() : 'not built';
  return `${commit}, dist built ${built}`;
}

export function printMachine(m) {
  console.log(
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memGB} GB RAM, ${m.platform}; node ${m.node}; ${m.date}`,
  );
  console.log(`project: ${m.project}`);
}

/** Resident set size of a process in MB, from /proc (null once the process is gone). */
export function rssMB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : null;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak in MB. */
export function sampleRss(pid, everyMs = 200) {
  let peak = rssMB(pid) ?? 0;
  const timer = setInterval(() => {
    const mb = rssMB(pid);
    if (mb !== null && mb > peak) peak = mb;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const mb = rssMB(pid);
      if (mb !== null && mb > peak) peak = mb;
      return peak;
    },
  };
}

const CLK_TCK = 100; // USER_HZ; Linux reports /proc times in 1/100 s on every common build

/** Busy CPU seconds of the whole machine so far (all cores, /proc/stat). */
function machineBusySeconds() {
  const [, ...fields] = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number); // skip idle, iowait
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function processCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * CPU accounting over an interval: cores used by each watched pid and by everything else on the
 * machine. "others" is the noise indicator: on a 2-core box anything there skews the result.
 */
export function cpuMeter(pids) {
  const t0 = performance.now();
  const busy0 = machineBusySeconds();
  const own0 = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => [k, processCpuSeconds(pid)]),
  );
  return {
    /** Call before the watched processes exit, or their share lands in "others". */
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const out = {};
      let ownTotal = 0;
      for (const [k, pid] of Object.entries(pids)) {
        const used = processCpuSeconds(pid) - own0[k];
        ownTotal += used;
        out[k] = used / wall;
      }
      out.others = Math.max(0, (machineBusySeconds() - busy0 - ownTotal) / wall);
      return out;
    },
  };
}

/** Cores' worth of CPU the machine spends over `ms`, excluding this process: a pre-run check. */
export async function backgroundLoad(ms = 1000) {
  const meter = cpuMeter({ self: process.pid });
  await new Promise((resolve) => setTimeout(resolve, ms));
  return meter.stop().others;
}

/**
 * Waits (up to `maxSeconds`) for a second in which other processes use under `threshold` cores;
 * returns the last measured background load. On a shared 2-core box this keeps a neighbour's
 * burst out of a phase.
 */
export async function waitQuiet(maxSeconds, threshold = 0.1) {
  const deadline = performance.now() + maxSeconds * 1000;
  let load = await backgroundLoad(1000);
  while (load >= threshold && performance.now() < deadline) load = await backgroundLoad(1000);
  return load;
}

/**
 * Spawns `node <args>` (or `command <args>`, e.g. redis-server) and resolves once a line on
 * `stream` satisfies `ready` (which returns the value to resolve with, or undefined). Lines after
 * that are kept in `lines` (bounded) so the pipe never fills and blocks the child.
 */
export function spawnUntil(
  args,
  { command = process.execPath, env, stream = 'stderr', ready, timeoutMs = 30_000 },
) {
  const t0 = performance.now();
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = { stdout: [], stderr: [] };
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => finish(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
    const finish = (error, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        child.kill('SIGKILL');
        const tail = [...lines.stdout, ...lines.stderr].slice(-20).join('\n');
        const shown = command === process.execPath ? 'node' : command;
        reject(new Error(`${error.message}: ${shown} ${args.join(' ')}\n${tail}`));
      } else {
        resolve({ child, pid: child.pid, readyMs: performance.now() - t0, value, lines, exited });
      }
    };
    for (const name of ['stdout', 'stderr']) {
      readline.createInterface({ input: child[name] }).on('line', (line) => {
        const kept = lines[name];
        kept.push(line);
        if (kept.length > 200) kept.shift();
        if (!done && name === stream) {
          const value = ready(line);
          if (value !== undefined) finish(null, value);
        }
      });
    }
    child.once('error', (error) => finish(error));
    exited.then(({ code, signal }) =>
      finish(new Error(`exited (code ${code}, signal ${signal}) before ready`)),
    );
  });
}

function jsonLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** Our server; resolves at its "listening" log line (LOG_LEVEL info: per-event lines are debug). */
export function startOurServer({ dataDir, secret, commitMode, nodeArgs = [], extraArgs = [] }) {
  const args = [...nodeArgs, CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...extraArgs];
  if (commitMode) args.push('--commit-mode', commitMode);
  const env = { LOG_LEVEL: 'info' };
  if (secret) env.STRIPE_WEBHOOK_SECRET = secret;
  return spawnUntil(args, {
    env,
    stream: 'stderr',
    ready: (line) => {
      const record = jsonLine(line);
      return record?.msg === 'listening' ? record.url : undefined;
    },
  });
}

export function startBaselineServer({ secret, nodeArgs = [] }) {
  return spawnUntil([...nodeArgs, path.join(BENCH_DIR, 'baseline-server.mjs'), '0'], {
    env: { STRIPE_WEBHOOK_SECRET: secret },
    stream: 'stdout',
    ready: (line) => {
      const port = jsonLine(line)?.port;
      return port ? `http://127.0.0.1:${port}` : undefined;
    },
  });
}

/** SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
export async function stop(server, graceMs = 15_000) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return server.exited;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), graceMs);
  const result = await server.exited;
  clearTimeout(timer);
  return result;
}

export async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json();
  return { status: res.status, body };
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(values) {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Fixed-width text table: `rows` are arrays of cells, the first row the header. */
export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r) =>
    r
      .map((cell, c) =>
        c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]),
      )
      .join('  ');
  return [
    line(rows[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ].join('\n');
}

export const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
