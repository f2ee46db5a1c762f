import type { HistoryEntry, StoredEvent } from '../../buffer/buffer.js';
import type { Happening, HappeningKind } from '../../buffer/happenings.js';
import type { Catalog } from '../../catalog/catalog.js';
import { toolCallForModel } from '../../catalog/render.js';
import { fenceModelText, fenceNotice, newNonce, type RedactKind } from '../../catalog/untrusted.js';
import type { EventFilters } from './types.js';

/**
 * The queue's own happenings as MCP Events event types (docs/MCP.md "Events"), beside the Stripe
 * types: a call awaiting a person's approval, an event gone dead, the agent paused. Read from the
 * store's happenings log (src/buffer/happenings.ts), whose position is their cursor.
 */

export const QUEUE_TYPES: Record<string, HappeningKind> = {
  'queue.call_awaiting_approval': 'held',
  'queue.event_dead': 'dead',
  'queue.agent_paused': 'paused',
};

export function isQueueType(name: string): boolean {
  return Object.hasOwn(QUEUE_TYPES, name);
}

export function queueKindOf(name: string): HappeningKind | null {
  return isQueueType(name) ? QUEUE_TYPES[name]! : null;
}

const EVENT_FIELDS: Record<string, unknown> = {
  happening: { type: 'string', enum: ['held', 'dead'] },
  event_id: {
    type: 'string',
    description: 'The Stripe event id (evt_…): pass it to get_event, approve_action, replay_event',
  },
  type: { type: 'string', description: 'The Stripe event type' },
  tool: { type: ['string', 'null'], description: 'The tool call the event maps to' },
  livemode: { type: 'boolean' },
  object_id: { type: ['string', 'null'] },
  amount: { type: ['integer', 'null'], description: 'Amount in minor units, as Stripe sends it' },
  currency: { type: ['string', 'null'] },
  amount_display: {
    type: ['string', 'null'],
    description: 'The amount formatted in its currency, e.g. $4,120.00',
  },
  facts: {
    type: ['object', 'null'],
    description: 'The facts extracted from the event; customer-written text fenced',
  },
  at: { type: 'string', description: 'When it happened (ISO 8601)' },
  untrusted_notice: { type: 'string' },
};

const HELD_PAYLOAD: Record<string, unknown> = {
  type: 'object',
  required: ['happening', 'event_id', 'type', 'reason', 'at', 'untrusted_notice'],
  properties: {
    ...EVENT_FIELDS,
    reason: {
      type: ['string', 'null'],
      description: 'Why it waits for a person (fenced: it may hold model-written text)',
    },
    proposed_call: {
      type: ['object', 'null'],
      description: 'The call the agent decided and a person must approve (input fenced)',
    },
  },
};

const DEAD_PAYLOAD: Record<string, unknown> = {
  type: 'object',
  required: ['happening', 'event_id', 'type', 'error', 'attempts', 'at', 'untrusted_notice'],
  properties: {
    ...EVENT_FIELDS,
    error: { type: ['string', 'null'], description: 'The last error (fenced)' },
    attempts: { type: 'integer' },
  },
};

const PAUSED_PAYLOAD: Record<string, unknown> = {
  type: 'object',
  required: ['happening', 'reason', 'by', 'note', 'at', 'untrusted_notice'],
  properties: {
    happening: { type: 'string', enum: ['paused'] },
    reason: { type: ['string', 'null'], description: 'manual, budget or breaker' },
    by: { type: ['string', 'null'], description: 'Who paused: a person or a loop' },
    note: { type: ['string', 'null'], description: 'Why, in words (fenced)' },
    until: { type: ['string', 'null'], description: 'When it lifts by itself (ISO 8601)' },
    at: { type: 'string' },
    untrusted_notice: { type: 'string' },
  },
};

export const QUEUE_DESCRIPTIONS: Record<string, string> = {
  'queue.call_awaiting_approval':
    'A call waits for a person: the agent held it for approval (or a person must decide); approve_action or reject_action it (decide_event when a person must decide)',
  'queue.event_dead':
    'An event gone dead: its attempts ran out; read the error, then replay_event or ack_event it',
  'queue.agent_paused':
    'The agent loops on this store were paused (by a person, the budget or the breaker); resume_agent lifts it',
};

export const QUEUE_PAYLOADS: Record<string, Record<string, unknown>> = {
  'queue.call_awaiting_approval': HELD_PAYLOAD,
  'queue.event_dead': DEAD_PAYLOAD,
  'queue.agent_paused': PAUSED_PAYLOAD,
};

/** The history entry a happening recorded: the last of its kind at or before it. */
function entryOf(history: HistoryEntry[], kind: 'held' | 'dead', at: number): HistoryEntry | null {
  let found: HistoryEntry | null = null;
  for (const entry of history) {
    if (entry.kind === kind && Date.parse(entry.at) <= at) found = entry;
  }
  return found;
}

/** The decision a held call waits on: the last decision with a call before the hold. */
function proposedCall(history: HistoryEntry[], held: HistoryEntry | null): HistoryEntry | null {
  const end = held ? history.indexOf(held) : history.length;
  for (let i = end - 1; i >= 0; i--) {
    const entry = history[i]!;
    if (entry.kind === 'held' || entry.kind === 'resumed') break;
    if (entry.kind === 'decision' && entry.tool_call) return entry;
  }
  return null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * One happening's `data`, or null when the filters skip it (livemode, tools, min_amount apply to
 * the event of a hold or a death; a pause has no event and is always kept).
 */
export function happeningData(
  happening: Happening,
  event: StoredEvent | null,
  history: HistoryEntry[],
  filters: EventFilters,
  catalog: Catalog,
  redact: readonly RedactKind[],
  /** The event's occurrence data under the filters; 'skip' when they skip it, null when unmapped. */
  eventFacts: (event: StoredEvent, nonce: string) => Record<string, unknown> | 'skip' | null,
): Record<string, unknown> | null {
  const nonce = newNonce();
  const fenced = (text: string | null | undefined) =>
    text === null || text === undefined ? null : fenceModelText(text, nonce);
  if (happening.kind === 'paused') {
    const pause = happening.pause;
    return {
      happening: 'paused',
      reason: pause?.reason ?? null,
      by: pause?.by ?? null,
      note: fenced(pause?.note),
      until: pause?.until === null || pause?.until === undefined ? null : iso(pause.until),
      at: iso(happening.at),
      untrusted_notice: fenceNotice(nonce),
    };
  }
  // The event was pruned (it ended over seven days ago): nothing left to act on.
  if (!event) return null;
  const facts = eventFacts(event, nonce);
  if (facts === 'skip') return null;
  // An event whose type left the catalog still happened; a tools filter skips it.
  if (!facts && filters.tools) return null;
  if (filters.livemode !== undefined && event.livemode !== filters.livemode) return null;
  const base = {
    happening: happening.kind,
    event_id: event.id,
    type: event.type,
    tool: (facts?.tool as string | undefined) ?? null,
    livemode: event.livemode,
    object_id: event.objectId,
    amount: facts?.amount ?? null,
    currency: facts?.currency ?? null,
    amount_display: facts?.amount_display ?? null,
    facts: facts?.facts ?? null,
    at: iso(happening.at),
  };
  const entry = entryOf(history, happening.kind, happening.at);
  if (happening.kind === 'held') {
    const decision = proposedCall(history, entry);
    const call = decision?.tool_call
      ? toolCallForModel(catalog, event.type, decision.tool_call, { nonce, redact }).value
      : null;
    return {
      ...base,
      reason: fenced(entry?.note),
      proposed_call: call,
      untrusted_notice: fenceNotice(nonce),
    };
  }
  return {
    ...base,
    error: fenced(entry?.note ?? event.lastError),
    attempts: event.attempts,
    untrusted_notice: fenceNotice(nonce),
  };
}
