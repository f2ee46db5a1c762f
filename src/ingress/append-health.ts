import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Whether appends succeed, for `/healthz`. The store's own health check (a read) passes while
 * the disk is full; what fails is writing. So health also looks at the outcome of the last
 * append, and, for a store on local disk, at a write probe: a small file written, synced and
 * removed in the data dir. The probe is how health turns green again by itself once space
 * returns, without waiting for the next webhook.
 */
export interface AppendHealthState {
  ok: boolean;
  /** Why appends are failing (the last append's error, or the probe's). */
  detail?: string;
}

export interface AppendHealth {
  /** Called by the webhook handler after each append. */
  record(ok: boolean, error?: unknown): void;
  /** The current verdict; runs the probe (at most one at a time, reused for PROBE_REUSE_MS). */
  check(): Promise<AppendHealthState>;
}

const PROBE_FILE = '.health-probe';
// Larger than one SQLite page plus its WAL frame: a disk with less free room fails appends too.
const PROBE_BYTES = 16 * 1024;
/** Health checks in a burst share one probe: a flood of /healthz must not be a flood of writes. */
const PROBE_REUSE_MS = 1_000;
/** How long a failed append keeps health red when there is no probe to say it recovered. */
const FAILURE_HOLD_MS = 30_000;

function describe(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && typeof e.message === 'string') return e.message;
  return typeof e?.message === 'string' ? e.message : String(error);
}

/** `probeDir`: the directory the store writes to, or null when it is not on local disk (Redis). */
export function createAppendHealth(probeDir: string | null): AppendHealth {
  let lastFailure: { at: number; detail: string } | null = null;
  let probe: { at: number; result: Promise<AppendHealthState> } | null = null;

  const runProbe = async (): Promise<AppendHealthState> => {
    if (probeDir === null) return { ok: true };
    const file = path.join(probeDir, PROBE_FILE);
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(file, 'w', 0o600);
      await handle.write(Buffer.alloc(PROBE_BYTES));
      await handle.datasync();
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: `the data dir cannot be written: ${describe(error)}` };
    } finally {
      await handle?.close().catch(() => {});
      await fs.rm(file, { force: true }).catch(() => {});
    }
  };

  return {
    record(ok, error) {
      lastFailure = ok ? null : { at: Date.now(), detail: describe(error) };
    },
    async check() {
      const now = Date.now();
      if (!probe || now - probe.at >= PROBE_REUSE_MS) probe = { at: now, result: runProbe() };
      const started = probe.at;
      const result = await probe.result;
      if (!result.ok) return result;
      // A failed append stands until an append succeeds, or a probe started after it succeeds.
      // A store not on disk has no probe: its failure stands for a while, not until the next
      // append, since a balancer that stops sending on 503 would keep it red for ever.
      const stands =
        lastFailure !== null &&
        (probeDir === null ? now - lastFailure.at < FAILURE_HOLD_MS : lastFailure.at >= started);
      if (lastFailure && stands) {
        return { ok: false, detail: `the last append failed: ${lastFailure.detail}` };
      }
      return { ok: true };
    },
  };
}
