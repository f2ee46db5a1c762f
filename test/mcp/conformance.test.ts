import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app.js';
import { loadServeConfig } from '../../src/config/config.js';
import { newSecret } from '../helpers/sign.js';
import { cliEnv, REPO_ROOT } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';
import { silent } from './helpers.js';

const run = promisify(execFile);

/** The official MCP conformance suite (pinned devDependency), run against our /mcp. */
const SUITE = path.join(REPO_ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
/** Maps the suite's `fs` import to one with `globSync`, which Node 20 lacks. */
const HOOK = path.join(REPO_ROOT, 'test/mcp/conformance/hook-register.mjs');

// The scenarios that apply to this server. The others exercise the suite's own fixture tools,
// resources and prompts (test_image_content, test://static-text, test_simple_prompt, …).
const SCENARIOS = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'tools-list',
  'resources-list',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

function checksIn(dir: string): Check[] {
  const checks: Check[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (path.basename(entry) === 'checks.json') {
      checks.push(...(JSON.parse(fs.readFileSync(path.join(dir, entry), 'utf8')) as Check[]));
    }
  }
  return checks;
}

describe('MCP conformance suite (@modelcontextprotocol/conformance)', () => {
  let server: RunningServer;
  let out: ReturnType<typeof tempDir>;
  let data: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    data = tempDir('sem-conf-');
    out = tempDir('sem-conf-out-');
    const config = loadServeConfig(
      { port: '0', dataDir: data.dir },
      { STRIPE_WEBHOOK_SECRET: newSecret() },
    );
    server = await startServer(config, { logger: silent, notice: () => {} });
  });

  afterAll(async () => {
    await server?.close();
    data?.remove();
    out?.remove();
  });

  it.each(SCENARIOS)('passes %s', async (scenario) => {
    const dir = path.join(out.dir, scenario);
    const result = await run(
      process.execPath,
      [
        '--import',
        HOOK,
        SUITE,
        'server',
        '--url',
        `${server.url}/mcp`,
        '--scenario',
        scenario,
        '-o',
        dir,
      ],
      { cwd: REPO_ROOT, env: cliEnv(), timeout: 60_000 },
    ).catch((error: { stdout?: string; stderr?: string; code?: number }) => {
      throw new Error(
        `conformance ${scenario} exited ${error.code}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`,
      );
    });
    const checks = checksIn(dir);
    expect(checks.length, result.stdout).toBeGreaterThan(0);
    const failed = checks.filter((c) => c.status !== 'SUCCESS' && c.status !== 'INFO');
    expect(failed, result.stdout).toEqual([]);
  });
});
