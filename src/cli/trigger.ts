import Stripe from 'stripe';
import { DEFAULT_WEBHOOK_URL, parseSecrets } from '../config/config.js';
import { defaultDataDir, readDevSecret } from '../config/data-dir.js';
import { AppError, ConfigError } from '../errors.js';
import { buildTestEvent, FIXTURE_TYPES, parseSetValue, setPath } from '../stripe/fixtures.js';
import { out } from './output.js';

export interface TriggerOptions {
  set?: string[];
  url?: string;
  secret?: string;
  dataDir?: string;
}

/** The secret to sign with: --secret, else the first configured one, else the data dir's dev secret. */
export function triggerSecret(options: TriggerOptions, env: NodeJS.ProcessEnv): string {
  if (options.secret !== undefined) {
    const [secret] = parseSecrets(options.secret);
    if (!secret)
      throw new ConfigError(
        '--secret',
        'is empty. Fix: pass the whsec_… the server verifies with.',
      );
    return secret;
  }
  const configured = parseSecrets(env.STRIPE_WEBHOOK_SECRET)[0];
  if (configured) return configured;
  const dataDir = options.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env);
  const dev = readDevSecret(dataDir);
  if (dev) return dev;
  throw new ConfigError(
    '--secret / STRIPE_WEBHOOK_SECRET',
    `nothing to sign with: no secret given and no dev secret in ${dataDir}. Fix: start \`stripe-events-mcp serve\` once (it creates one), pass --data-dir of the running server, or pass --secret whsec_….`,
  );
}

/** Builds the test event of `type`, with `--set path=value` overrides applied. */
export function buildTriggerPayload(type: string, sets: readonly string[] = []): string {
  if (!FIXTURE_TYPES.includes(type)) {
    throw new ConfigError(
      '<event-type>',
      `no test event for ${JSON.stringify(type)}. Fix: use one of ${FIXTURE_TYPES.join(', ')}.`,
    );
  }
  const event = buildTestEvent(type);
  for (const assignment of sets) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(
        '--set',
        `${JSON.stringify(assignment)} is not path=value. Fix: e.g. --set data.object.amount=5000.`,
      );
    }
    try {
      setPath(event, assignment.slice(0, eq), parseSetValue(assignment.slice(eq + 1)));
    } catch (error) {
      throw new ConfigError(
        '--set',
        `${(error as Error).message}. Fix: use a dot path such as data.object.amount.`,
      );
    }
  }
  // Stripe sends pretty-printed JSON; so do we, so signatures are checked over realistic bytes.
  return JSON.stringify(event, null, 2);
}

/** Signs and POSTs a test event; resolves to the process exit code. */
export async function runTrigger(
  type: string,
  options: TriggerOptions,
  env = process.env,
): Promise<number> {
  const payload = buildTriggerPayload(type, options.set);
  const secret = triggerSecret(options, env);
  const url = options.url ?? DEFAULT_WEBHOOK_URL;
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header },
      body: payload,
    });
  } catch (error) {
    const inner = (error as { cause?: { code?: string; message?: string } }).cause;
    const cause = inner?.code ?? inner?.message ?? (error as Error).message;
    throw new AppError(
      'unreachable',
      `cannot reach ${url} (${cause}). Is \`stripe-events-mcp serve\` running there?`,
    );
  }
  const text = await response.text();
  out(`${type} → ${url}`);
  out(`HTTP ${response.status} ${text}`);
  return response.ok ? 0 : 1;
}
