/**
 * The queue's search (src/console/search.ts): what matches, newest first, and the bound of the scan
 * (the newest arrivals only, said so; an event id at any age).
 */
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/buffer/buffer.js';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { eventMatches, searchEvents, searchTerm } from '../../src/console/search.js';
import { buildTestEvent } from '../../src/stripe/fixtures.js';

function stored(event: Record<string, any>): StoredEvent {
  return {
    id: event.id,
    type: event.type,
    created: event.created,
    livemode: false,
    objectId: event.data.object.id ?? null,
    payload: JSON.stringify(event),
    status: 'pending',
    attempts: 0,
    receivedAt: 0,
    updatedAt: 0,
    retryAt: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    lastError: null,
    outcome: null,
  };
}

describe('what a search matches', () => {
  const invoice = buildTestEvent('invoice.payment_failed') as Record<string, any>;
  const o = invoice.data.object;
  const event = stored(invoice);

  it('the event id, its object id, and the ids its object points to', () => {
    expect(eventMatches(event, invoice.id)).toBe(true);
    expect(eventMatches(event, o.id)).toBe(true);
    expect(eventMatches(event, o.customer)).toBe(true);
    expect(eventMatches(event, 'cus_someone_else')).toBe(false);
    // A part of an id is not the id.
    expect(eventMatches(event, o.customer.slice(0, -2))).toBe(false);
  });

  it('an expanded reference by its id, and an email (any case) wherever a field names one', () => {
    const expanded = structuredClone(invoice);
    expanded.data.object.customer = { id: 'cus_Expanded01', email: 'Grace@Example.com' };
    expect(eventMatches(stored(expanded), 'cus_Expanded01')).toBe(true);
    expect(eventMatches(stored(expanded), 'grace@example.COM')).toBe(true);
    const dispute = stored(buildTestEvent('charge.dispute.created'));
    // evidence.customer_email_address, two levels down.
    expect(eventMatches(dispute, 'MAYA.okafor@example.com')).toBe(true);
    // Text that only contains the address is not a field holding it.
    const note = structuredClone(invoice);
    note.data.object.customer_email = null;
    note.data.object.description = 'write to lin@example.com';
    expect(eventMatches(stored(note), 'lin@example.com')).toBe(false);
  });

  it('reads a query trimmed, and nothing empty or too long', () => {
    expect(searchTerm('  cus_1 ')).toBe('cus_1');
    expect(searchTerm('   ')).toBeNull();
    expect(searchTerm(['cus_1'])).toBeNull();
    expect(searchTerm('x'.repeat(201))).toBeNull();
  });
});

describe('searchEvents over a store', () => {
  async function store(n: number) {
    const buffer = new MemoryBuffer();
    for (let i = 0; i < n; i++) {
      const event = buildTestEvent('invoice.payment_failed') as Record<string, any>;
      event.id = `evt_s${String(i).padStart(5, '0')}`;
      event.data.object.id = `in_s${String(i).padStart(5, '0')}`;
      event.data.object.customer = i % 2 ? 'cus_Odd' : 'cus_Even';
      await buffer.append({
        id: event.id,
        type: event.type,
        created: event.created,
        livemode: false,
        objectId: event.data.object.id,
        payload: JSON.stringify(event),
      });
    }
    return buffer;
  }

  it('finds matches newest first, capped, and says when more matched', async () => {
    const buffer = await store(40);
    const r = await searchEvents(buffer, 'cus_Odd', { results: 5 });
    expect(r.events.map((e) => e.id)).toEqual([
      'evt_s00039',
      'evt_s00037',
      'evt_s00035',
      'evt_s00033',
      'evt_s00031',
    ]);
    expect(r).toMatchObject({ more: true, scanned: 40, cut: false });
    const one = await searchEvents(buffer, 'in_s00012');
    expect(one.events.map((e) => e.id)).toEqual(['evt_s00012']);
    expect(one.more).toBe(false);
  });

  it('reads only the newest arrivals, says so, and still finds an older event by its id', async () => {
    const buffer = await store(30);
    const recent = await searchEvents(buffer, 'in_s00025', { scan: 10 });
    expect(recent.events.map((e) => e.id)).toEqual(['evt_s00025']);
    expect(recent).toMatchObject({ cut: true, scanned: 10 });
    expect((await searchEvents(buffer, 'in_s00005', { scan: 10 })).events).toEqual([]);
    const byId = await searchEvents(buffer, 'evt_s00005', { scan: 10 });
    expect(byId.events.map((e) => e.id)).toEqual(['evt_s00005']);
  });
});
