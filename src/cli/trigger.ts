import Stripe from 'stripe';
import { DEFAULT_WEBHOOK_URL, parseSecrets } from '../config/config.js';
import { defaultDataDir, readDevSecret } from '../config/data-dir.js';
import { closest } from '../config/suggest.js';
import { AppError, ConfigError } from '../errors.js';
import { buildTestEvent, FIXTURE_TYPES, parseSetValue, setPath } from '../stripe/fixtures.js';
import { out, warn } from './output.js';

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

/**
 * Why `path` is not a field of the fixture `event`, or null when it is. setPath creates what is
 * missing, which is right for a field added on purpose and silently wrong for a typo
 * (`data.object.amout=5` sends the fixture's own amount): the first missing key is compared with
 * the keys at its level. A path through null or an array stops the check there, since those have
 * no keys to compare with (null fields, appended items).
 */
export function unknownFixturePath(
  event: Record<string, unknown>,
  type: string,
  path: string,
): string | null {
  let node: unknown = event;
  for (const segment of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return null;
    const keys = Object.keys(node);
    if (!keys.includes(segment)) {
      const [meant] = closest(segment, keys, 1);
      const hint = meant === undefined ? 'it is added as a new field' : `did you mean ${meant}?`;
      return `${path} is not in the ${type} fixture; ${hint}`;
    }
    node = (node as Record<string, unknown>)[segment];
  }
  return null;
}

/**
 * Builds the test event of `type`, with `--set path=value` overrides applied. A path the fixture
 * does not have is still set (and sent), with a warning on stderr.
 */
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
    const path = assignment.slice(0, eq);
    // Checked before it is set, and after the earlier --set: a field one --set adds is known.
    const unknown = unknownFixturePath(event, type, path);
    try {
      setPath(event, path, parseSetValue(assignment.slice(eq + 1)));
    } catch (error) {
      throw new ConfigError(
        '--set',
        `${(error as Error).message}. Fix: use a dot path such as data.object.amount.`,
      );
    }
    if (unknown !== null) warn(unknown);
  }
  // Stripe sends pretty-printed JSON; so do we, so signatures are checked over realistic bytes.
  return JSON.stringify(event, null, 2);
}

/**
 * Signs `payload` as Stripe does (stripe-node's test header: `t=…,v1=…`) and POSTs it to `url`.
 * An unreachable server is an AppError naming the URL.
 */
export async function postSignedEvent(
  url: string,
  payload: string,
  secret: string,
): Promise<{ status: number; ok: boolean; text: string }> {
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
  return { status: response.status, ok: response.ok, text: await response.text() };
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
  const response = await postSignedEvent(url, payload, secret);
  out(`${type} → ${url}`);
  out(`HTTP ${response.status} ${response.text}`);
  return response.ok ? 0 : 1;
}
