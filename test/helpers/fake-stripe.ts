import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildTestEvent } from '../../src/stripe/fixtures.js';

/**
 * A fake Stripe Events API served over real HTTP, for stripe-node to talk to (host/port/protocol
 * through STRIPE_API_BASE). GET /v1/events answers Stripe's list shape, newest first, honouring
 * limit, starting_after, ending_before, types[] and created[gte]; GET /v1/events/:id answers one
 * event. It checks the bearer key.
 */
export interface FakeStripeRequest {
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  /** The Stripe-Account header (Connect), when sent. */
  stripeAccount: string | undefined;
}

export interface FakeStripe {
  url: string;
  key: string;
  requests: FakeStripeRequest[];
  /** Newest first, as the API lists them. */
  events: Record<string, unknown>[];
  /**
   * Objects served at GET /v1/<resource>/:id (charges, customers, disputes, invoices,
   * subscriptions, payment_intents, refunds, checkout/sessions, radar/early_fraud_warnings), by
   * id: a test changes an object's current state by replacing or editing its entry.
   */
  objects: Record<string, Record<string, unknown>>;
  /** Answer the next n requests with 429 (rate limited). */
  rateLimitNext(n: number): void;
  /** Object reads of these resources (e.g. "disputes") answer 403, as for a restricted key. */
  forbidden: Set<string>;
  /** While true, every request's connection is cut (the API unreachable). */
  down: boolean;
  close(): Promise<void>;
}

export interface FakeStripeOptions {
  key?: string;
  events?: Record<string, unknown>[];
  objects?: Record<string, Record<string, unknown>>;
}

function stripeError(res: http.ServerResponse, status: number, type: string, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { type, message } }));
}

/** The values of an array query parameter, as stripe-node sends it (types[0]=…) or types[]=…. */
function arrayParam(query: URLSearchParams, name: string): string[] {
  const values: string[] = [];
  for (const [k, v] of query)
    if (k === `${name}[]` || new RegExp(`^${name}\\[\\d+\\]$`).test(k)) values.push(v);
  return values;
}

export async function startFakeStripe(options: FakeStripeOptions = {}): Promise<FakeStripe> {
  const key = options.key ?? 'sk_test_fake_0123456789';
  const requests: FakeStripeRequest[] = [];
  let limited = 0;
  const fake = {
    key,
    requests,
    events: options.events ?? [],
    objects: options.objects ?? {},
    rateLimitNext(n: number) {
      limited = n;
    },
    forbidden: new Set<string>(),
    down: false,
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push({
      path: url.pathname,
      query: url.searchParams,
      authorization: req.headers.authorization,
      stripeAccount: req.headers['stripe-account'] as string | undefined,
    });
    if (fake.down) {
      req.socket.destroy();
      return;
    }
    if (req.headers.authorization !== `Bearer ${key}`) {
      stripeError(res, 401, 'invalid_request_error', 'Invalid API Key provided: sk_test_****0000');
      return;
    }
    if (limited > 0) {
      limited--;
      stripeError(res, 429, 'rate_limit_error', 'Too many requests hit the API too quickly.');
      return;
    }
    const object =
      /^\/v1\/(charges|customers|disputes|invoices|subscriptions|payment_intents|refunds|checkout\/sessions|radar\/early_fraud_warnings)\/([^/]+)$/.exec(
        url.pathname,
      );
    if (req.method === 'GET' && object && fake.forbidden.has(object[1]!)) {
      const permission = `rak_${object[1]!.replace(/s$/, '').replace(/\//g, '_')}_read`;
      stripeError(
        res,
        403,
        'invalid_request_error',
        `The provided key 'rk_test_****' does not have the required permissions for this endpoint on account 'acct_fake'. Having the '${permission}' permission would allow this request to continue.`,
      );
      return;
    }
    if (req.method === 'GET' && object) {
      const found = fake.objects[decodeURIComponent(object[2]!)];
      if (!found) {
        stripeError(res, 404, 'invalid_request_error', `No such ${object[1]}: '${object[2]}'`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(found));
      return;
    }
    const one = /^\/v1\/events\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && one) {
      const event = fake.events.find((e) => e.id === decodeURIComponent(one[1]!));
      if (!event) {
        stripeError(res, 404, 'invalid_request_error', `No such event: '${one[1]}'`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(event));
      return;
    }
    if (req.method !== 'GET' || url.pathname !== '/v1/events') {
      stripeError(
        res,
        404,
        'invalid_request_error',
        `Unrecognized request URL (${req.method}: ${url.pathname})`,
      );
      return;
    }
    const q = url.searchParams;
    const limit = Math.min(100, Number(q.get('limit') ?? 10));
    const types = arrayParam(q, 'types');
    const gte = q.get('created[gte]');
    const all = fake.events;
    const position = (id: string) => all.findIndex((e) => e.id === id);
    let lo = 0;
    let hi = all.length;
    const after = q.get('starting_after');
    const before = q.get('ending_before');
    for (const cursor of [after, before]) {
      if (cursor && position(cursor) < 0) {
        stripeError(res, 400, 'invalid_request_error', `No such event: '${cursor}'`);
        return;
      }
    }
    if (after) lo = position(after) + 1;
    if (before) hi = position(before);
    const matching = all
      .slice(lo, hi)
      .filter((e) => types.length === 0 || types.includes(e.type as string))
      .filter((e) => gte === null || (e.created as number) >= Number(gte));
    const page = before ? matching.slice(-limit) : matching.slice(0, limit);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        object: 'list',
        data: page,
        has_more: matching.length > page.length,
        url: '/v1/events',
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/**
 * `n` events of the given types (cycled), newest first, created one second apart ending `now`.
 */
export function makeEvents(
  types: readonly string[],
  n: number,
  nowMs = Date.now(),
): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const type = types[i % types.length]!;
    events.push(buildTestEvent(type, { now: new Date(nowMs - i * 1000) }));
  }
  return events;
}
