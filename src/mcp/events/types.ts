import type { StoredEvent } from '../../buffer/buffer.js';
import type { Catalog } from '../../catalog/catalog.js';
import { toolCallForModel } from '../../catalog/render.js';
import { fenceNotice, newNonce, type RedactKind } from '../../catalog/untrusted.js';
import { formatAmountOrNull } from '../../money.js';
import { isQueueType, QUEUE_DESCRIPTIONS, QUEUE_PAYLOADS, QUEUE_TYPES } from './queue-types.js';

/**
 * The event types `events/list` offers (docs/MCP.md "Events"): one per mapped Stripe type, named
 * as Stripe names it (`charge.dispute.created`), and `stripe.event` for every mapped type at once.
 * Per Stripe type, not per tool, because a type is what Stripe guarantees and what a client
 * already knows; the tool is in every payload and is a filter of `stripe.event`.
 */

export const ANY_EVENT = 'stripe.event';
export const DELIVERY_MODES = ['poll', 'push', 'webhook'] as const;

/** The subscription arguments every event type accepts (its `inputSchema`). */
export interface EventFilters {
  livemode?: boolean;
  tools?: string[];
  /** Per lower-case currency: occurrences whose amount is below the floor are skipped. */
  min_amount?: Record<string, number>;
}

export interface EventTypeDefinition {
  name: string;
  description: string;
  delivery: (typeof DELIVERY_MODES)[number][];
  inputSchema: Record<string, unknown>;
  payloadSchema: Record<string, unknown>;
}

const MAX_FILTER_TOOLS = 64;
const MAX_FLOOR_CURRENCIES = 32;

function inputSchema(tools: string[]): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      livemode: {
        type: 'boolean',
        description: 'Only live-mode (true) or test-mode (false) events; both when absent',
      },
      tools: {
        type: 'array',
        items: { type: 'string', enum: tools },
        maxItems: MAX_FILTER_TOOLS,
        description: 'Only events that map to one of these tools; all when absent',
      },
      min_amount: {
        type: 'object',
        description:
          'Amount floor per currency, in minor units (cents): {"usd": 50000} skips USD events under $500.00. Events in other currencies, or without an amount, are kept.',
        propertyNames: { pattern: '^[a-z]{3}$' },
        additionalProperties: { type: 'integer', minimum: 0 },
        maxProperties: MAX_FLOOR_CURRENCIES,
      },
    },
  };
}

const PAYLOAD_SCHEMA: Record<string, unknown> = {
  type: 'object',
  required: ['event_id', 'type', 'tool', 'livemode', 'facts', 'untrusted_notice'],
  properties: {
    event_id: {
      type: 'string',
      description: 'The Stripe event id (evt_…): pass it to get_event, ack_event, nack_event',
    },
    type: { type: 'string', description: 'The Stripe event type' },
    tool: { type: 'string', description: 'The tool call the event maps to' },
    livemode: { type: 'boolean' },
    object_id: { type: ['string', 'null'], description: "The Stripe object's id" },
    created: { type: 'integer', description: 'When Stripe created the event (Unix seconds)' },
    amount: {
      type: ['integer', 'null'],
      description: 'Amount in minor units, as Stripe sends it',
    },
    currency: { type: ['string', 'null'] },
    amount_display: {
      type: ['string', 'null'],
      description: 'The amount formatted in its currency, e.g. $4,120.00',
    },
    facts: {
      type: 'object',
      description:
        'The facts extracted from the event (the tool call input); customer-written text is fenced in untrusted-data tags',
    },
    untrusted_notice: { type: 'string' },
  },
};

/** The definitions, from the catalog (one per mapped type, then `stripe.event`). */
export function eventTypes(catalog: Catalog, webhook = true): EventTypeDefinition[] {
  const delivery = DELIVERY_MODES.filter((mode) => webhook || mode !== 'webhook');
  const tools = [...new Set(catalog.entries().map((d) => d.tool))].sort();
  const schema = inputSchema(tools);
  const perType = catalog.entries().map((def) => ({
    name: def.type,
    description: `Stripe sent ${def.type} (maps to ${def.tool}): ${def.description}`,
    delivery: [...delivery],
    inputSchema: schema,
    payloadSchema: PAYLOAD_SCHEMA,
  }));
  const queue = Object.keys(QUEUE_TYPES).map((name) => ({
    name,
    description: QUEUE_DESCRIPTIONS[name]!,
    delivery: [...delivery],
    inputSchema: schema,
    payloadSchema: QUEUE_PAYLOADS[name]!,
  }));
  return [
    ...perType,
    ...queue,
    {
      name: ANY_EVENT,
      description:
        'Any mapped Stripe event arrived in the queue; narrow it with the tools filter (and livemode, min_amount)',
      delivery: [...delivery],
      inputSchema: schema,
      payloadSchema: PAYLOAD_SCHEMA,
    },
  ];
}

export class EventArgumentsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventArgumentsError';
  }
}

/** Checks subscription arguments against the input schema; returns them normalised. */
export function parseFilters(value: unknown, catalog: Catalog): EventFilters {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new EventArgumentsError('arguments must be an object');
  }
  const out: EventFilters = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'livemode') {
      if (typeof v !== 'boolean') throw new EventArgumentsError('livemode must be a boolean');
      out.livemode = v;
    } else if (key === 'tools') {
      const known = new Set(catalog.entries().map((d) => d.tool));
      if (!Array.isArray(v) || v.length > MAX_FILTER_TOOLS) {
        throw new EventArgumentsError(
          `tools must be an array of at most ${MAX_FILTER_TOOLS} tool names`,
        );
      }
      for (const tool of v) {
        if (typeof tool !== 'string' || !known.has(tool)) {
          throw new EventArgumentsError(
            `tools: ${JSON.stringify(tool)} is not one of this server's tools`,
          );
        }
      }
      out.tools = [...new Set(v as string[])].sort();
    } else if (key === 'min_amount') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new EventArgumentsError('min_amount must be an object of currency → minor units');
      }
      const entries = Object.entries(v);
      if (entries.length > MAX_FLOOR_CURRENCIES) {
        throw new EventArgumentsError(`min_amount: at most ${MAX_FLOOR_CURRENCIES} currencies`);
      }
      const floors: Record<string, number> = {};
      for (const [currency, floor] of entries.sort(([a], [b]) => a.localeCompare(b))) {
        if (!/^[a-z]{3}$/.test(currency) || !Number.isSafeInteger(floor) || (floor as number) < 0) {
          throw new EventArgumentsError(
            'min_amount: keys are lower-case ISO currencies, values non-negative integers (minor units)',
          );
        }
        floors[currency] = floor as number;
      }
      out.min_amount = floors;
    } else {
      throw new EventArgumentsError(
        `unknown argument ${JSON.stringify(key)} (livemode, tools, min_amount)`,
      );
    }
  }
  return out;
}

/** The Stripe types an event type reads from the store (null: the name is not offered). */
export function typesOf(name: string, filters: EventFilters, catalog: Catalog): string[] | null {
  // A queue type reads the happenings log, not events by type (queue-types.ts).
  if (isQueueType(name)) return [];
  if (name === ANY_EVENT) {
    const tools = filters.tools ? new Set(filters.tools) : null;
    return catalog
      .entries()
      .filter((d) => !tools || tools.has(d.tool))
      .map((d) => d.type);
  }
  const def = catalog.lookup(name);
  if (!def) return null;
  return !filters.tools || filters.tools.includes(def.tool) ? [def.type] : [];
}

/** One occurrence's `data`, or null when the filters skip the event. */
export function occurrenceData(
  event: StoredEvent,
  filters: EventFilters,
  catalog: Catalog,
  redact: readonly RedactKind[],
  /** One nonce per occurrence; a queue type's payload passes its own to share one notice. */
  nonce: string = newNonce(),
): Record<string, unknown> | null {
  if (filters.livemode !== undefined && event.livemode !== filters.livemode) return null;
  const call = catalog.toolCall(event.type, event.payload);
  if (!call) return null;
  if (filters.tools && !filters.tools.includes(call.name)) return null;
  const amount = typeof call.input.amount === 'number' ? call.input.amount : null;
  const currency = typeof call.input.currency === 'string' ? call.input.currency : null;
  const floor = currency ? filters.min_amount?.[currency.toLowerCase()] : undefined;
  if (floor !== undefined && amount !== null && amount < floor) return null;
  // One nonce per occurrence: each is read on its own (a webhook body, a poll entry).
  const shown = toolCallForModel(catalog, event.type, call, { nonce, redact });
  return {
    event_id: event.id,
    type: event.type,
    tool: call.name,
    livemode: event.livemode,
    object_id: event.objectId,
    created: event.created,
    amount,
    currency,
    amount_display: formatAmountOrNull(amount, currency),
    facts: shown.value.input,
    untrusted_notice: fenceNotice(nonce),
  };
}
