import type { AgentPause, EventBuffer, HistoryEntry, StoredEvent } from '../../buffer/buffer.js';
import type { Catalog } from '../../catalog/catalog.js';
import { formatAmountOrNull } from '../../money.js';
import type { ApprovalDeadline } from '../expiry.js';

/**
 * What people are told (issue #20.7), as data: the Slack and webhook targets render the same
 * notice. It carries the facts a person needs to act from a phone — event, tool, decided action,
 * formatted amount, customer, why it waits, the deadline — and the console link. Never a secret:
 * it is built from the event, its history and the pause only (no config, no environment), and the
 * values here are plain text; each target escapes them for its own format.
 */
export type NoticeKind = 'waiting' | 'expiring' | 'expired' | 'dead' | 'paused';

export interface EventNotice {
  id: string;
  type: string;
  tool: string | null;
  /** The decided action (`accept`, `refund`…), when the model decided one. */
  action: string | null;
  /** `$4,120.00`; null when the event has no amount. The raw integer is `amount_minor`. */
  amount: string | null;
  amount_minor: number | null;
  currency: string | null;
  customer: string | null;
  /** Why it waits (the approval rule), why it expired, or why it died. */
  reason: string | null;
  /** When the approval expires (ISO), and which rule set it. */
  deadline: string | null;
  deadline_why: ApprovalDeadline['why'] | null;
  /** The console page of the event. */
  link: string;
  /** Other facts of the event and the decided call's text fields (customer- or model-written). */
  facts: Record<string, string | number | boolean>;
}

export interface Notice {
  kind: NoticeKind;
  /** One line: what happened. */
  title: string;
  at: string;
  event: EventNotice | null;
  pause: {
    reason: string | null;
    note: string | null;
    until: string | null;
    /** The console's overview. */
    link: string;
  } | null;
}

/** Facts shown: bounded in number and length, whatever an event carries. */
export const MAX_FACTS = 16;

/** `ch_…`, `pi_…`: references a person follows in the Dashboard, not facts to read here. */
const STRIPE_REF = /^[a-z]{2,6}_[A-Za-z0-9]{8,}$/;
export const MAX_FACT_CHARS = 300;

const SHOWN_ELSEWHERE = new Set(['amount', 'currency', 'customer', 'reason', 'action']);

function shortText(value: string): string {
  const flat = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > MAX_FACT_CHARS ? `${flat.slice(0, MAX_FACT_CHARS - 1)}…` : flat;
}

function scalarFacts(
  input: Readonly<Record<string, unknown>> | undefined,
  into: Record<string, string | number | boolean>,
): void {
  for (const [key, value] of Object.entries(input ?? {})) {
    if (Object.keys(into).length >= MAX_FACTS) return;
    if (SHOWN_ELSEWHERE.has(key) || Object.hasOwn(into, key)) continue;
    if (typeof value === 'string' && key !== 'stripe_id' && STRIPE_REF.test(value)) continue;
    if (typeof value === 'string' && value.trim() !== '') into[key] = shortText(value);
    else if (typeof value === 'number' && Number.isFinite(value)) into[key] = value;
    else if (typeof value === 'boolean') into[key] = value;
  }
}

/** The console page of event `id` under `publicUrl` (no trailing slash). */
export function consoleLink(publicUrl: string, id: string): string {
  return `${publicUrl}/console/event/${encodeURIComponent(id)}`;
}

function lastOf(history: readonly HistoryEntry[], kind: HistoryEntry['kind']) {
  return [...history].reverse().find((h) => h.kind === kind);
}

/** The facts of `event` for a notice, from its payload (via the catalog) and its history. */
export function eventNotice(
  event: StoredEvent,
  history: readonly HistoryEntry[],
  catalog: Catalog,
  publicUrl: string,
  extra: { reason?: string | null; deadline?: ApprovalDeadline | null } = {},
): EventNotice {
  const facts = catalog.toolCall(event.type, event.payload);
  const decided = lastOf(history, 'decision')?.tool_call ?? null;
  const input = facts?.input ?? {};
  const amountMinor = typeof input.amount === 'number' ? input.amount : null;
  const currency = typeof input.currency === 'string' ? input.currency : null;
  const customer =
    typeof input.customer_email === 'string'
      ? input.customer_email
      : typeof input.customer === 'string'
        ? input.customer
        : null;
  const shown: Record<string, string | number | boolean> = {};
  // The decided call first (its text, e.g. evidence_summary, is what would be sent), then facts.
  scalarFacts(decided?.input, shown);
  scalarFacts(input, shown);
  const action = decided?.input.action;
  return {
    id: event.id,
    type: event.type,
    tool: decided?.name ?? facts?.name ?? null,
    action: typeof action === 'string' ? shortText(action) : null,
    amount: formatAmountOrNull(amountMinor, currency),
    amount_minor: amountMinor,
    currency,
    customer: customer === null ? null : shortText(customer),
    reason: extra.reason === undefined || extra.reason === null ? null : shortText(extra.reason),
    deadline: extra.deadline ? new Date(extra.deadline.at).toISOString() : null,
    deadline_why: extra.deadline?.why ?? null,
    link: consoleLink(publicUrl, event.id),
    facts: shown,
  };
}

const TITLES: Record<Exclude<NoticeKind, 'paused'>, string> = {
  waiting: 'A call waits for approval',
  expiring: 'An approval expires soon',
  expired: 'An approval expired; the default applied',
  dead: 'An event went dead',
};

/** Reads the event's history and builds the notice. */
export async function buildEventNotice(
  buffer: EventBuffer,
  catalog: Catalog,
  publicUrl: string,
  kind: Exclude<NoticeKind, 'paused'>,
  event: StoredEvent,
  extra: { reason?: string | null; deadline?: ApprovalDeadline | null } = {},
  now: number = Date.now(),
): Promise<Notice> {
  const history = await buffer.history(event.id);
  const reason =
    extra.reason !== undefined
      ? extra.reason
      : kind === 'dead'
        ? event.lastError
        : (lastOf(history, 'held')?.note ?? null);
  return {
    kind,
    title: TITLES[kind],
    at: new Date(now).toISOString(),
    event: eventNotice(event, history, catalog, publicUrl, { ...extra, reason }),
    pause: null,
  };
}

export function pauseNotice(
  pause: AgentPause,
  publicUrl: string,
  now: number = Date.now(),
): Notice {
  return {
    kind: 'paused',
    title: `The agent paused (${pause.reason ?? 'paused'})`,
    at: new Date(now).toISOString(),
    event: null,
    pause: {
      reason: pause.reason,
      note: pause.note === null ? null : shortText(pause.note),
      until: pause.until === null ? null : new Date(pause.until).toISOString(),
      link: `${publicUrl}/console`,
    },
  };
}
