/**
 * Issue #21 point 4 through the agent loop: `customer.subscription.updated` created before
 * `…deleted` for one subscription, delivered in reverse, with 16 workers → handled in `created`
 * order, on SQLite and on Redis.
 */
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentLoop } from '../../src/agent/loop.js';
import type { EventBuffer } from '../../src/buffer/buffer.js';
import { openRedisBuffer } from '../../src/buffer/redis/store.js';
import { SqliteBuffer } from '../../src/buffer/sqlite/store.js';
import { createCatalog } from '../../src/catalog/catalog.js';
import type { Sink } from '../../src/dispatch/dispatch.js';
import { createLogger } from '../../src/logger.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { decideFirstAction, startFakeAnthropic } from '../helpers/fake-anthropic.js';
import { deleteKeys, REDIS_URL, redisGate, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/spawn.js';
import { tempDir } from '../helpers/tmp.js';

const redis = await redisGate();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const SUBSCRIPTIONS = 12;

async function runOrderCase(buffer: EventBuffer): Promise<void> {
  // The model answers after a moment, so 16 workers really do overlap.
  const api = await startFakeAnthropic(async (req) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return decideFirstAction(req);
  });
  cleanups.push(() => api.close());
  const order: string[] = [];
  const sink: Sink = {
    kind: 'capture',
    async dispatch(req) {
      order.push(req.event_id);
      return { outcome: 'dispatched' };
    },
  };
  const expected: [string, string][] = [];
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    const sub = `sub_order_${i}`;
    const updated = buildTestEvent('customer.subscription.updated') as Record<string, any>;
    const deleted = buildTestEvent('customer.subscription.deleted') as Record<string, any>;
    updated.created = 1_790_000_000 + i;
    deleted.created = updated.created + 1;
    for (const e of [updated, deleted]) e.data.object.id = sub;
    expected.push([updated.id, deleted.id]);
    // Delivered in reverse: the deletion first.
    for (const e of [deleted, updated]) {
      await buffer.append({
        id: e.id,
        type: e.type,
        created: e.created,
        livemode: false,
        objectId: sub,
        payload: JSON.stringify(e),
      });
    }
  }
  const loop = new AgentLoop({
    buffer,
    catalog: createCatalog(),
    client: new Anthropic({ apiKey: 'test-key', baseURL: api.url, maxRetries: 0 }),
    sink,
    logger: createLogger({ level: 'silent' }),
    model: 'claude-test',
    concurrency: 16,
    maxTurns: 2,
    maxTokens: 256,
    retryBaseMs: 10,
    pollMs: 10,
  });
  loop.start();
  cleanups.push(() => loop.stop());
  await waitFor(() => order.length === SUBSCRIPTIONS * 2, 'every event dispatched', 30_000);
  for (const [updated, deleted] of expected) {
    expect(order.indexOf(updated)).toBeLessThan(order.indexOf(deleted));
  }
}

describe('one object, one order, through the agent loop at --concurrency 16', () => {
  it('SQLite: updated (created first) is handled before deleted, delivered in reverse', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const buffer = new SqliteBuffer({ file: path.join(tmp.dir, 'events.db') });
    cleanups.push(() => buffer.close());
    await runOrderCase(buffer);
  });

  it.skipIf(!redis.run)(`Redis: the same${redis.skipNote}`, async () => {
    const prefix = uniquePrefix('order');
    const buffer = await openRedisBuffer({ url: REDIS_URL, prefix });
    cleanups.push(async () => {
      await buffer.close();
      await deleteKeys(prefix);
    });
    await runOrderCase(buffer);
  });
});
