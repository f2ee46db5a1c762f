import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors.js';

export const DATA_DIR_SETTING = '--data-dir / STRIPE_EVENTS_DATA_DIR';
export const DEV_SECRET_FILE = 'dev-webhook-secret';

/**
 * The per-user data directory. Never the current directory: Claude Desktop starts servers in `/`.
 */
export function defaultDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = os.homedir(),
): string {
  const name = 'stripe-events-mcp';
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', name);
  if (platform === 'win32') {
    return path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), name);
  }
  const xdg = env.XDG_DATA_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.local', 'share'), name);
}

/** Creates the directory if needed and proves it writable, or throws a ConfigError that says so. */
export function ensureWritableDir(dir: string): void {
  const probe = path.join(dir, `.write-test-${process.pid}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      DATA_DIR_SETTING,
      `cannot write to ${dir} (${code}). Fix: point --data-dir or STRIPE_EVENTS_DATA_DIR at a directory this user can write.`,
      { cause: error },
    );
  }
}

export interface DevSecret {
  secret: string;
  file: string;
  created: boolean;
}

/** The dev secret of a data dir, if one was made there. */
export function readDevSecret(dataDir: string): string | null {
  try {
    const text = fs.readFileSync(path.join(dataDir, DEV_SECRET_FILE), 'utf8').trim();
    return text.startsWith('whsec_') ? text : null;
  } catch {
    return null;
  }
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Random letters and digits only, like Stripe's own secrets: a double-click selects the whole
 * secret (base64url's `-` and `_` split it). 32 of 62 symbols is about 190 bits.
 */
function alphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.randomBytes(length)) {
      // 248 = 4 × 62: bytes above it are dropped so every symbol is equally likely.
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62];
    }
  }
  return out;
}

/**
 * Loads the data dir's dev secret, creating a random one (mode 0600) the first time. Used only when
 * no STRIPE_WEBHOOK_SECRET is set, so signatures are still always checked.
 */
export function loadOrCreateDevSecret(dataDir: string): DevSecret {
  const file = path.join(dataDir, DEV_SECRET_FILE);
  const existing = readDevSecret(dataDir);
  if (existing) return { secret: existing, file, created: false };
  const secret = `whsec_${alphanumeric(32)}`;
  try {
    fs.writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process created it between our read and write: theirs wins.
    const raced =
      (error as NodeJS.ErrnoException).code === 'EEXIST' ? readDevSecret(dataDir) : null;
    if (raced) return { secret: raced, file, created: false };
    throw error;
  }
  return { secret, file, created: true };
}
