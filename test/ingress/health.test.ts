import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { killLeftovers, startServe, waitFor } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

// Issue #15: with the disk full the webhook answered 503 while /healthz said 200 ok. Health must
// say whether appends succeed, and turn green again by itself once space returns.

const cleanups: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await killLeftovers();
});

/** A small tmpfs at a fresh directory, or the reason none can be mounted here. */
function mountTmpfs(sizeKiB: number): { dir: string } | { skip: string } {
  const tmp = tempDir('sem-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', tmp.dir], {
      stdio: 'pipe',
    });
  } catch (error) {
    tmp.remove();
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return { skip: `cannot mount a tmpfs here (needs root): ${stderr || String(error)}` };
  }
  cleanups.push(() => {
    execFileSync('umount', ['-l', tmp.dir], { stdio: 'pipe' });
    tmp.remove();
  });
  return { dir: tmp.dir };
}

/** Writes 64 KiB chunks until the file system says ENOSPC. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
  // The last bytes: a smaller write can still fit where a chunk could not.
  const tail = fs.openSync(file, 'a');
  try {
    for (;;) fs.writeSync(tail, Buffer.alloc(512, 1));
  } catch {
    // full
  } finally {
    fs.closeSync(tail);
  }
}

/** Whether this machine lets the tests mount a tmpfs (we run as root in CI; elsewhere: skip). */
function mountSkipReason(): string | null {
  const tmp = tempDir('sem-tmpfs-check-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', tmp.dir], { stdio: 'pipe' });
    execFileSync('umount', [tmp.dir], { stdio: 'pipe' });
    return null;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs here (needs root): ${stderr || String(error)}`;
  } finally {
    tmp.remove();
  }
}

const skip = mountSkipReason();
const note = skip ? ` (skipped: ${skip})` : '';

/** A 4 MiB tmpfs, unmounted after the test. */
function smallDisk(): string {
  const mounted = mountTmpfs(4096);
  if ('skip' in mounted) throw new Error(mounted.skip);
  return mounted.dir;
}

describe('/healthz tells whether appends succeed', () => {
  it.skipIf(skip !== null)(
    `a full disk turns both the webhook and /healthz to 503; freeing it turns both back, without a restart${note}`,
    async () => {
      const disk = smallDisk();
      const dataDir = path.join(disk, 'data');
      const secret = newSecret();
      const s = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: secret } });
      cleanups.push(() => s.stop());
      const send = (payload: string) =>
        postWebhook(s.url, payload, { 'stripe-signature': signatureHeader(payload, secret) });
      const health = async () => {
        const res = await fetch(`${s.url}/healthz`);
        return { status: res.status, body: (await res.json()) as Record<string, any> };
      };
      const first = JSON.stringify(buildTestEvent('charge.dispute.created'));
      expect((await send(first)).body.status).toBe('queued');
      expect((await health()).status).toBe(200);

      const filler = path.join(disk, 'filler');
      fill(filler);
      // Large enough that the store needs new pages for it.
      const big = buildTestEvent('charge.dispute.created');
      (big as { padding?: string }).padding = 'x'.repeat(256 * 1024);
      const refused = await send(JSON.stringify(big));
      expect(refused.status).toBe(503);
      const down = await health();
      expect(down.status).toBe(503);
      expect(down.body.status).toBe('unavailable');
      expect(down.body.store.ok).toBe(false);

      fs.rmSync(filler);
      await waitFor(
        async () => (await health()).status === 200,
        '/healthz to turn 200 again once space returned',
      );
      expect((await send(JSON.stringify(big))).body.status).toBe('queued');
      expect((await health()).body.pending).toBe(2);
    },
    60_000,
  );

  it.skipIf(skip !== null)(
    `a full disk shows in /healthz before any webhook fails (the write probe)${note}`,
    async () => {
      const disk = smallDisk();
      const dataDir = path.join(disk, 'data');
      const s = await startServe({ dataDir, env: { STRIPE_WEBHOOK_SECRET: newSecret() } });
      cleanups.push(() => s.stop());
      const filler = path.join(disk, 'filler');
      fill(filler);
      await waitFor(
        async () => (await fetch(`${s.url}/healthz`)).status === 503,
        '/healthz to answer 503 with the disk full',
      );
      fs.rmSync(filler);
      await waitFor(
        async () => (await fetch(`${s.url}/healthz`)).status === 200,
        '/healthz to answer 200 again',
      );
    },
    60_000,
  );
});
