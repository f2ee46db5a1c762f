import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, jsonLines, REPO_ROOT, waitFor } from './helpers/spawn.js';
import { tempDir } from './helpers/tmp.js';

/**
 * The package as a user gets it: `npm pack`, then `npm install -g` of the tarball into a temporary
 * prefix, then the installed `stripe-events-mcp` binary. A file missing from `files` (or a
 * dependency missing from `dependencies`) fails here, not on a user's machine.
 *
 * Dependencies come from the npm cache or the registry. better-sqlite3's install script compiles
 * its addon when no prebuilt binary can be downloaded, which takes minutes on a small box; by
 * default the install skips install scripts and copies the addon of this checkout's own
 * better-sqlite3 (the same version, for the same Node). SEM_PACK_FULL_INSTALL=1 runs them instead.
 */
const run = promisify(execFile);
const INSTALL_TIMEOUT_MS = 15 * 60_000;
const fullInstall = process.env.SEM_PACK_FULL_INSTALL === '1';
const version = (
  JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

let work: { dir: string; remove: () => void };
let bin: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  work = tempDir('sem-pack-');
  const npmEnv = {
    ...process.env,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  // dist/ is built before the tests run; --ignore-scripts keeps pack from rebuilding it.
  const packed = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', work.dir],
    { cwd: REPO_ROOT, env: npmEnv, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
  );
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  const prefix = path.join(work.dir, 'prefix');
  await run(
    'npm',
    [
      'install',
      '--global',
      '--prefix',
      prefix,
      path.join(work.dir, filename),
      '--omit=dev',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...(fullInstall ? [] : ['--ignore-scripts']),
    ],
    { cwd: work.dir, env: npmEnv, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
  );
  const installed = path.join(prefix, 'lib', 'node_modules', 'stripe-events-mcp');
  if (!fullInstall) {
    const addon = path.join('better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    const target = path.join(installed, 'node_modules', addon);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', addon), target);
  }
  bin = path.join(prefix, 'bin', 'stripe-events-mcp');
  // The bin's `#!/usr/bin/env node` needs a node on PATH: this one.
  env = cliEnv({
    PATH: `${path.join(prefix, 'bin')}${path.delimiter}${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
  });
}, INSTALL_TIMEOUT_MS);

afterAll(() => work?.remove());

describe('the packed package, installed globally', () => {
  it('installs only what it needs: dist, package.json, README, no tests or sources', () => {
    const installed = path.join(work.dir, 'prefix', 'lib', 'node_modules', 'stripe-events-mcp');
    const top = fs.readdirSync(installed).sort();
    expect(top).toContain('dist');
    expect(top).toContain('package.json');
    expect(top).toContain('README.md');
    for (const absent of ['src', 'test', 'bench', 'tsconfig.json'])
      expect(top).not.toContain(absent);
    expect(fs.existsSync(bin)).toBe(true);
  });

  it('`stripe-events-mcp --version` prints the version', async () => {
    const { stdout } = await run(bin, ['--version'], { env, timeout: 60_000 });
    expect(stdout.trim()).toBe(version);
  });

  it('`stripe-events-mcp serve` answers GET /healthz with 200', async () => {
    const data = tempDir('sem-pack-data-');
    const child = spawn(bin, ['serve', '--port', '0', '--data-dir', data.dir], {
      cwd: '/',
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    try {
      const listening = await waitFor(
        () => jsonLines(stderr).find((r) => r.msg === 'listening'),
        'serve to listen',
        60_000,
      );
      const res = await fetch(`${String(listening.url)}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      const exited = new Promise((resolve) => child.once('close', resolve));
      child.kill('SIGTERM');
      await exited;
      data.remove();
    }
  });

  it('`stripe-events-mcp stdio` initializes with the MCP SDK client', async () => {
    const data = tempDir('sem-pack-data-');
    const transport = new StdioClientTransport({
      command: bin,
      args: ['stdio', '--port', '0'],
      cwd: '/',
      env: {
        ...getDefaultEnvironment(),
        PATH: env.PATH!,
        STRIPE_EVENTS_DATA_DIR: data.dir,
      },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'pack-test', version: '1.0.0' });
    try {
      await client.connect(transport);
      expect(client.getServerVersion()).toMatchObject({ name: 'stripe-events-mcp', version });
      const { tools } = await client.listTools();
      expect(tools).toHaveLength(14);
    } finally {
      await client.close();
      data.remove();
    }
  });
});
