import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { runCli } from '../helpers/spawn.js';
import { call, connectInMemory, incoming, openStore, textOf, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** `{ a: { a: … { a: 'bottom' } } }`, `depth` levels, as JSON text (built without recursion). */
function deepJson(depth: number): string {
  return '{"a":'.repeat(depth) + '"bottom"' + '}'.repeat(depth);
}

/**
 * A poison event as the store may already hold it (written before the webhook validated
 * envelopes, or by another path): prototype-named keys, 5 000 levels of nesting, and a `created`
 * SQLite keeps as a REAL infinity.
 */
function poisonPayload(id: string): string {
  const event = buildTestEvent('charge.dispute.created') as Record<string, any>;
  event.id = id;
  const object = event.data.object;
  // Keys a plain-object lookup would resolve through Object.prototype.
  object.metadata = { __proto__: 'p', constructor: 'c', toString: 't', hasOwnProperty: 'h' };
  object.constructor = { name: 'nested under constructor' };
  object.evidence = { ...object.evidence, valueOf: { toString: 'x' } };
  const text = JSON.stringify(event);
  // JSON text carries "__proto__" as a plain key; splice it and the deep value in as text.
  return text.replace(
    '"metadata":{',
    `"__proto__":{"has":"not a set","label":"under __proto__"},"deep":${deepJson(5000)},"metadata":{"__proto__":"p",`,
  );
}

const badId = 'evt_poison_1';

/** A real SQLite store holding a good event, then the poison row written with better-sqlite3. */
async function poisonedStore() {
  const store = openStore(cleanups);
  const good = incoming('charge.dispute.created');
  await store.buffer.append(good);
  const db = new Database(path.join(store.dir, 'events.db'));
  db.prepare(
    `INSERT INTO events (id, type, created, livemode, object_id, payload, status, received_at, updated_at)
     VALUES (?, 'charge.dispute.created', ?, 0, 'dp_poison', ?, 'pending', ?, ?)`,
  ).run(badId, Infinity, poisonPayload(badId), Date.now(), Date.now());
  expect(db.prepare('SELECT typeof(created) AS t FROM events WHERE id = ?').get(badId)).toEqual({
    t: 'real',
  });
  db.close();
  return { store, good };
}

describe('one bad stored event breaks neither listing nor another event', () => {
  it('lists and gets a poison event (prototype keys, 5 000 levels, created = Infinity) and a good one', async () => {
    const { store, good } = await poisonedStore();

    const { client } = await connectInMemory(store, cleanups);
    const list = await call(client, 'list_pending_events', { limit: 10 });
    const ids = list.events.map((e: { id: string }) => e.id);
    expect(ids).toEqual([good.id, badId]);
    const bad = list.events.find((e: { id: string }) => e.id === badId);
    expect(bad.created).toBeNull();
    expect(bad.tool_call.name).toBe('handle_dispute');
    expect(list.events[0].created).toBe(good.created);

    const shown = await call(client, 'get_event', { id: badId, include_event: true });
    expect(shown.tool_call.name).toBe('handle_dispute');
    const text = JSON.stringify(shown.event);
    expect(text).toContain('[nested too deep]');
    expect(text).not.toContain('bottom');
    expect(textOf(shown._result)).toContain(badId);

    const fine = await call(client, 'get_event', { id: good.id, include_event: true });
    expect(fine.event.id).toBe(good.id);
    expect(fine.tool_call.input.amount).toBe(JSON.parse(good.payload).data.object.amount);

    const prompt = await client.getPrompt({ name: 'triage_event', arguments: { event_id: badId } });
    const promptText = JSON.stringify(prompt.messages);
    expect(promptText).toContain('created at an unknown time');
    expect(promptText).toContain('handle_dispute');
  });

  it('events list and events show print the poison event and the good one', async () => {
    const { store, good } = await poisonedStore();
    const list = await runCli(['events', 'list', '--data-dir', store.dir]);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ID +TYPE/);
    expect(lines[1]).toContain(good.id);
    // `unknown` in the CREATED column, padded to the width of the good event's date.
    expect(lines[2]).toMatch(/^evt_poison_1 .* unknown +handle_dispute {2}\$129\.00$/);
    const json = await runCli(['events', 'list', '--json', '--data-dir', store.dir]);
    expect(JSON.parse(json.stdout)[1]).toMatchObject({ id: badId, created: null });
    const show = await runCli(['events', 'show', badId, '--data-dir', store.dir]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('[nested too deep]');
  });
});
