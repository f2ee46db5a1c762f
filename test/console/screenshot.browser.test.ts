/**
 * The README's picture of the console, `docs/console.png`, taken here on every run so it shows the
 * console as it is: `demo` (its realistic queue: decided, dispatched, a call awaiting approval, an
 * event asking a person) photographed in Debian's Chromium, driven by playwright-core.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliEnv, REPO_ROOT, killLeftovers, waitFor } from '../helpers/spawn.js';

const PICTURE = path.join(REPO_ROOT, 'docs', 'console.png');
const WIDTH = 1200;
const HEIGHT = 1000;
/** The README loads it on every visit: kept small. */
const MAX_BYTES = 200 * 1024;

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
});

afterAll(async () => {
  await browser?.close();
  await killLeftovers();
});

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('the console picture', () => {
  it('photographs the demo console into docs/console.png', async () => {
    const child = spawn(process.execPath, [CLI, 'demo'], {
      cwd: REPO_ROOT,
      env: cliEnv({ LOG_LEVEL: undefined }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    try {
      // The demo prints its closing lines once every event is decided.
      await waitFor(() => stderr.includes('Ctrl-C stops the demo'), 'the demo to settle', 30_000);
      const base = /is listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)![1]!;
      const context = await browser.newContext({
        viewport: { width: WIDTH, height: HEIGHT },
        deviceScaleFactor: 1,
      });
      try {
        const page = await context.newPage();
        await page.goto(`${base}/console`);
        await page.locator('.banner').waitFor();
        // The live page follows the store: waited for, within the bound the demo test holds.
        const count = (status: string) => page.locator(`[data-count="${status}"]`).textContent();
        await expect.poll(() => count('awaiting_approval'), { timeout: 20_000 }).toBe('2');
        await expect.poll(() => count('acked'), { timeout: 20_000 }).toBe('4');
        await page.screenshot({ path: PICTURE, type: 'png' });
      } finally {
        await context.close();
      }
      const png = fs.readFileSync(PICTURE);
      expect(pngSize(png)).toEqual({ width: WIDTH, height: HEIGHT });
      expect(png.length).toBeLessThanOrEqual(MAX_BYTES);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
