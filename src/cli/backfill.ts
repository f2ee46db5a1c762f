import { composeServices } from '../compose/services.js';
import { loadStoreSettings } from '../config/config.js';
import { defaultDataDir } from '../config/data-dir.js';
import { loadConfigFile } from '../config/file.js';
import { AppError, ConfigError } from '../errors.js';
import {
  backfill,
  parseSince,
  resumeSince,
  type BackfillCounts,
  type Since,
} from '../ingress/backfill.js';
import { loadStripeApiSettings, SECRET_KEY_SETTING, stripeErrorMessage } from '../stripe/client.js';
import { out } from './output.js';

export interface BackfillFlags {
  since?: string;
  types?: string;
  dryRun?: boolean;
  dataDir?: string;
  store?: string;
  redisPrefix?: string;
  config?: string;
}

/** An Events API failure: exit code 1, with Stripe's message (never the key). */
export class StripeApiError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('stripe_api_error', message, options);
  }
}

const PROGRESS_EVERY_MS = 100;

function progressLine(c: Readonly<BackfillCounts>): string {
  return `fetched ${c.fetched} · queued ${c.queued} · duplicate ${c.duplicate} · ignored ${c.ignored}`;
}

function describeSince(since: Since): string {
  return since.kind === 'created'
    ? `since ${new Date(since.gte * 1000).toISOString()}`
    : `after ${since.id}`;
}

function parseTypes(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const types = [...new Set(raw.split(',').map((t) => t.trim()))].filter((t) => t !== '');
  const bad = types.find((t) => !/^[a-z0-9_.]+$/.test(t));
  if (types.length === 0 || bad !== undefined) {
    throw new ConfigError(
      '--types',
      `${JSON.stringify(bad ?? raw)} is not a list of event types. Fix: e.g. --types charge.dispute.created,invoice.payment_failed.`,
    );
  }
  return types;
}

/** `stripe-events-mcp backfill`: returns the exit code. */
export async function runBackfill(
  flags: BackfillFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { secretKey, apiBase } = loadStripeApiSettings(env);
  if (!secretKey) {
    throw new ConfigError(
      SECRET_KEY_SETTING,
      'is not set; backfill reads the Events API with it. Fix: export STRIPE_SECRET_KEY=sk_test_… (or a restricted rk_… key with read access to Events).',
    );
  }
  const types = parseTypes(flags.types);
  const explicitSince = flags.since === undefined ? null : parseSince(flags.since);
  // A dry run never creates a store: without one it compares against an empty one, so every
  // mapped event counts as new.
  const services = await composeServices({
    ...loadStoreSettings(flags, env),
    dataDir: flags.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env),
    ifMissing: flags.dryRun ? 'empty' : 'create',
    catalogOverrides: flags.config ? (loadConfigFile(flags.config).events ?? {}) : {},
    stripeSecretKey: secretKey,
    stripeApiBase: apiBase,
  });
  const { store: buffer, catalog, parked, stripe } = services;
  try {
    const since = explicitSince ?? (await resumeSince(buffer));
    if (since.kind === 'created' && since.clamped) {
      process.stderr.write(
        `stripe-events-mcp: --since is older than the 30 days Stripe keeps events; starting from ${new Date(since.gte * 1000).toISOString()}\n`,
      );
    }
    const unmapped = (types ?? []).filter((t) => !catalog.lookup(t));
    if (unmapped.length > 0) {
      process.stderr.write(
        `stripe-events-mcp: ${unmapped.join(', ')} not in the catalog: fetched and counted as ignored (add them with --config)\n`,
      );
    }
    const tty = process.stderr.isTTY === true;
    let last = 0;
    const counts = await backfill({
      stripe: stripe!,
      buffer,
      catalog,
      parked,
      since,
      types,
      dryRun: flags.dryRun === true,
      onProgress: tty
        ? (c) => {
            const now = Date.now();
            if (now - last < PROGRESS_EVERY_MS) return;
            last = now;
            process.stderr.write(`\rbackfill: ${progressLine(c)}`);
          }
        : undefined,
    }).catch((error: unknown) => {
      if (error instanceof AppError) throw error;
      throw new StripeApiError(`Stripe API error: ${stripeErrorMessage(error, secretKey)}`, {
        cause: error,
      });
    });
    if (tty && last > 0) process.stderr.write('\n');
    const note = flags.dryRun ? '; dry run: nothing stored' : '';
    out(`backfill ${describeSince(since)}: ${progressLine(counts).replace(/ · /g, ', ')}${note}`);
    return 0;
  } finally {
    await services.close();
  }
}
