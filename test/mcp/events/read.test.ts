import { describe, expect, it } from 'vitest';
import { DEDUP_WINDOW_MS, type EventBuffer } from '../../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../../src/buffer/memory.js';
import { SqliteBuffer } from '../../../src/buffer/sqlite/store.js';
import { createCatalog } from '../../../src/catalog/catalog.js';
import { decodeEventsCursor, encodeEventsCursor } from '../../../src/mcp/events/cursor.js';
import {
  headPosition,
  readAfter,
  startPosition,
  type Reader,
} from '../../../src/mcp/events/read.js';
import { ANY_EVENT, parseFilters } from '../../../src/mcp/events/types.js';
import { buildTestEvent } from '../../../src/stripe/fixtures.js';
import { tempDir } from '../../helpers/tmp.js';

const catalog = createCatalog();

async function append(buffer: EventBuffer, type: string, livemode = false): Promise<string> {
  const event = buildTestEvent(type);
  const id = String(event.id);
  await buffer.append({
    id,
    type,
    created: Number(event.created),
    livemode,
    objectId: null,
    payload: JSON.stringify({ ...event, livemode }),
  });
  return id;
}

const stores: [string, (now: () => number) => { buffer: EventBuffer; done: () => void }][] = [
  ['memory', (now) => ({ buffer: new MemoryBuffer({ now }), done: () => undefined })],
  [
    'sqlite',
    (now) => {
      const tmp = tempDir();
      const buffer = new SqliteBuffer({ file: `${tmp.dir}/events.db`, now });
      return { buffer, done: () => tmp.remove() };
    },
  ],
];

describe.each(stores)('MCP Events reads on the %s store', (_name, open) => {
  it('resumes exactly after a cursor, in order, none twice, and skips what the filters exclude', async () => {
    let clock = 1_700_000_000_000;
    const now = () => clock;
    const { buffer, done } = open(now);
    try {
      const reader: Reader = { buffer, catalog, redact: [], now };
      const start = await headPosition(reader, ANY_EVENT);
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        clock += 1000;
        ids.push(
          await append(
            buffer,
            i % 2 ? 'invoice.payment_failed' : 'charge.dispute.created',
            i === 3,
          ),
        );
      }
      const filters = parseFilters({ livemode: false }, catalog);
      const seen: string[] = [];
      let position = start;
      for (;;) {
        const read = await readAfter(
          reader,
          { name: ANY_EVENT, filters, maxEvents: 2 },
          position,
          false,
        );
        seen.push(...read.events.map((e) => e.eventId));
        position = decodeEventsCursor(read.cursor);
        if (!read.hasMore && read.events.length === 0) break;
      }
      expect(seen).toEqual(ids.filter((_, i) => i !== 3));
      // One by one: each occurrence's own cursor resumes right after it.
      const one = await readAfter(
        reader,
        { name: 'charge.dispute.created', filters: {}, maxEvents: 1 },
        start,
        true,
      );
      expect(one.events.map((e) => e.eventId)).toEqual([ids[0]]);
      const next = await readAfter(
        reader,
        { name: 'charge.dispute.created', filters: {}, maxEvents: 1 },
        decodeEventsCursor(one.events[0]!.cursor),
        true,
      );
      expect(next.events.map((e) => e.eventId)).toEqual([ids[2]]);
      // The head stays where it was after a prune: positions are never reused.
      for (const id of ids) await buffer.ack(id, { by: 'test' });
      clock += DEDUP_WINDOW_MS + 1;
      expect(await buffer.prune(clock - DEDUP_WINDOW_MS)).toBe(7);
      const head = await headPosition(reader, ANY_EVENT);
      expect(head.seq).toBe(7);
    } finally {
      await buffer.close();
      done();
    }
  });

  it('says truncated for a cursor older than the store keeps, and restarts from now', async () => {
    let clock = 1_700_000_000_000;
    const now = () => clock;
    const { buffer, done } = open(now);
    try {
      const reader: Reader = { buffer, catalog, redact: [], now };
      const old = encodeEventsCursor(await headPosition(reader, ANY_EVENT));
      await append(buffer, 'charge.dispute.created');
      clock += DEDUP_WINDOW_MS + 1;
      const start = await startPosition(reader, old, ANY_EVENT);
      expect(start.truncated).toBe(true);
      expect(start.position.seq).toBe(1);
      const fresh = await startPosition(reader, encodeEventsCursor(start.position), ANY_EVENT);
      expect(fresh.truncated).toBe(false);
    } finally {
      await buffer.close();
      done();
    }
  });
});

describe('occurrence payloads', () => {
  it('carry ids, tool, raw and formatted amount, and fence customer-written facts', async () => {
    const buffer = new MemoryBuffer();
    const reader: Reader = { buffer, catalog, redact: [], now: Date.now };
    const start = await headPosition(reader, ANY_EVENT);
    const id = await append(buffer, 'charge.dispute.created');
    const read = await readAfter(
      reader,
      { name: ANY_EVENT, filters: {}, maxEvents: 5 },
      start,
      false,
    );
    const data = read.events[0]!.data;
    expect(data).toMatchObject({
      event_id: id,
      type: 'charge.dispute.created',
      tool: 'handle_dispute',
    });
    expect(typeof data.amount).toBe('number');
    expect(String(data.amount_display)).toMatch(/\d/);
    expect(String(data.untrusted_notice)).toMatch(/untrusted/);
    const floor = parseFilters(
      { min_amount: { [String(data.currency)]: Number(data.amount) + 1 } },
      catalog,
    );
    const none = await readAfter(
      reader,
      { name: ANY_EVENT, filters: floor, maxEvents: 5 },
      start,
      false,
    );
    expect(none.events).toEqual([]);
    expect(() => parseFilters({ tools: ['nope'] }, catalog)).toThrow(/not one of/);
    expect(() => parseFilters({ colour: 1 }, catalog)).toThrow(/unknown argument/);
  });
});
