import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { backfill, parseSince } from '../../src/ingress/backfill.js';
import type { BackfillRunner } from '../../src/operations/backfill.js';
import { createStripeClient } from '../../src/stripe/client.js';
import { makeEvents, startFakeStripe } from '../helpers/fake-stripe.js';
import { callError, connectInMemory, openStore, type Cleanups } from './helpers.js';

/** backfill_events over the official MCP client (in-memory), against a fake Stripe API over HTTP. */
const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('backfill_events', () => {
  it('queues missed events through the dedup and reports progress notifications', async () => {
    const store = openStore(cleanups);
    const api = await startFakeStripe({
      events: makeEvents(['charge.dispute.created', 'invoice.paid'], 250),
    });
    cleanups.push(() => api.close());
    const stripe = createStripeClient({
      secretKey: api.key,
      apiBase: api.url,
      maxNetworkRetries: 0,
    });
    const runner: BackfillRunner = ({ since, types, onProgress }) =>
      backfill({
        stripe,
        buffer: store.buffer,
        catalog: store.catalog,
        since: parseSince(since ?? '24h'),
        types,
        onProgress,
      });
    const { client } = await connectInMemory(store, cleanups, { backfill: runner });
    const progress: { progress: number; message?: string }[] = [];
    const result = (await client.callTool(
      { name: 'backfill_events', arguments: { since: '24h' } },
      undefined,
      { onprogress: (p) => progress.push(p) },
    )) as CallToolResult;
    expect(result.isError).toBeFalsy();
    const counts = result.structuredContent as {
      fetched: number;
      queued: number;
      duplicate: number;
      ignored: number;
    };
    expect(counts.queued + counts.duplicate + counts.ignored).toBe(counts.fetched);
    expect(counts.queued).toBeGreaterThan(0);
    expect((await store.buffer.stats()).counts.pending).toBe(counts.queued);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ progress: counts.fetched });
    expect(progress.at(-1)!.message).toMatch(/queued \d+/);

    const again = (await client.callTool({
      name: 'backfill_events',
      arguments: {},
    })) as CallToolResult;
    expect((again.structuredContent as { queued: number }).queued).toBe(0);
  });

  it('says the server needs STRIPE_SECRET_KEY when it has none', async () => {
    const store = openStore(cleanups);
    const { client } = await connectInMemory(store, cleanups);
    expect(await callError(client, 'backfill_events', {})).toMatch(/STRIPE_SECRET_KEY/);
  });
});
