/**
 * The actor resolver (operations/people.ts) on a real SQLite store, and the generic role rule of
 * the MCP surface (mcp/server.ts): a tool registered after the server is built, without
 * `readOnlyHint: true`, is refused to a view-only person too.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryPeople } from '../../src/buffer/people.js';
import { createMcpServer } from '../../src/mcp/server.js';
import {
  ADMIN,
  createActorResolver,
  newPersonToken,
  tokenHash,
} from '../../src/operations/people.js';
import { createQueueOperations } from '../../src/operations/queue.js';
import { waitFor } from '../helpers/spawn.js';
import { newClient, openStore, silent, type Cleanups } from '../mcp/helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('the actor resolver', () => {
  it('names the administrator, a person, or nobody; asks for tokens once someone exists', async () => {
    const { buffer } = openStore(cleanups);
    const open = createActorResolver({ adminToken: null, people: buffer.people, cacheMs: 50 });
    expect(await open.authRequired()).toBe(false);
    const token = newPersonToken();
    await buffer.people.add({
      name: 'alice',
      role: 'approve',
      tokenHash: tokenHash(token),
      createdAt: Date.now(),
    });
    // Within the cache's bound, the first person makes tokens required.
    await waitFor(() => open.authRequired(), 'tokens required');
    expect(await open.resolve(token)).toEqual({ name: 'alice', role: 'approve' });
    expect(await open.resolve(token + 'x')).toBeNull();
    expect(await open.resolve('')).toBeNull();
    expect(await open.resolve('admin-token-of-32-characters-xxxx')).toBeNull();

    const admin = createActorResolver({
      adminToken: 'admin-token-of-32-characters-xxxx',
      people: buffer.people,
      cacheMs: 50,
    });
    expect(await admin.authRequired()).toBe(true);
    expect(await admin.resolve('admin-token-of-32-characters-xxxx')).toEqual(ADMIN);
    expect(await admin.resolve(token)).toEqual({ name: 'alice', role: 'approve' });

    // Removed: forgotten once the cached answer is older than the bound.
    await buffer.people.remove('alice');
    const removedAt = Date.now();
    await waitFor(async () => (await admin.resolve(token)) === null, 'alice forgotten');
    expect(Date.now() - removedAt).toBeLessThan(1_000);
  });

  it('keeps a cached answer for its bound, then asks the store again', async () => {
    const people = new MemoryPeople();
    let asked = 0;
    const counting = {
      ...people,
      add: people.add.bind(people),
      list: people.list.bind(people),
      remove: people.remove.bind(people),
      count: people.count.bind(people),
      byTokenHash: (hash: string) => {
        asked += 1;
        return people.byTokenHash(hash);
      },
    };
    const resolver = createActorResolver({ adminToken: null, people: counting, cacheMs: 60_000 });
    const token = newPersonToken();
    await people.add({ name: 'bob', role: 'view', tokenHash: tokenHash(token), createdAt: 0 });
    for (let i = 0; i < 100; i++) {
      expect(await resolver.resolve(token)).toEqual({ name: 'bob', role: 'view' });
    }
    expect(asked).toBe(1);
    // Not a person's token (no prefix, or too long): no store lookup at all.
    await resolver.resolve('x'.repeat(10_000));
    await resolver.resolve(`sem_p_${'x'.repeat(10_000)}`);
    expect(asked).toBe(1);
  });
});

describe('the MCP role rule', () => {
  it('refuses a view-only person every tool not marked read-only, including one added later', async () => {
    const store = openStore(cleanups);
    const server = createMcpServer({
      buffer: store.buffer,
      operations: createQueueOperations({ store: store.buffer }),
      catalog: store.catalog,
      redact: [],
      logger: silent,
      actor: { name: 'bob', role: 'view' },
    });
    let ran = 0;
    server.registerTool(
      'a_later_change',
      { description: 'changes something', inputSchema: { n: z.number() } },
      async () => {
        ran += 1;
        return { content: [{ type: 'text', text: 'done' }] };
      },
    );
    server.registerTool(
      'a_later_read',
      { description: 'reads', annotations: { readOnlyHint: true } },
      async () => ({ content: [{ type: 'text', text: 'read' }] }),
    );
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = newClient();
    await client.connect(clientSide);
    cleanups.push(() => client.close());

    const later = await client.callTool({ name: 'a_later_change', arguments: { n: 1 } });
    expect(later.isError).toBe(true);
    expect(JSON.stringify(later.content)).toContain('bob can view but not approve');
    expect(ran).toBe(0);
    const read = await client.callTool({ name: 'a_later_read', arguments: {} });
    expect(read.isError).toBeFalsy();
    for (const name of ['pause_agent', 'resume_agent']) {
      const refused = await client.callTool({ name, arguments: {} });
      expect(refused.isError, name).toBe(true);
    }
    expect((await store.buffer.agentPause()).paused).toBe(false);
    const status = await client.callTool({ name: 'get_queue_status', arguments: {} });
    expect(status.isError).toBeFalsy();
  });
});
