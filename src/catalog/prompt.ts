import { formatAmount } from '../money.js';
import type { Catalog, ToolCall } from './catalog.js';
import { MAX_DEPTH, TOO_DEEP } from './depth.js';
import { isoDate } from './extract.js';
import {
  cleanText,
  closeTag,
  fenceNotice,
  newNonce,
  openTag,
  redactedMarker,
  type RedactKind,
} from './untrusted.js';

/**
 * The compact rendering of an event for a model: what a decision needs (ids, amounts with their
 * currency, statuses, reasons, ISO dates) and the customer-written text fenced, instead of the
 * whole object dumped as JSON.
 */
export interface PromptEvent {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  /** The event as received (raw JSON text or parsed). */
  payload: string | unknown;
}

/**
 * Whether the facts shown were read from Stripe just now (`checkedAt`, and which differ from the
 * event's own), or are the event's snapshot alone (`checkedAt` null: nothing re-checked).
 */
export interface Freshness {
  checkedAt: number | null;
  changed: readonly string[];
}

export interface RenderOptions {
  nonce?: string;
  redact?: readonly RedactKind[];
  /** The tool call to show, when the caller has it already (e.g. enriched); else extracted. */
  call?: ToolCall;
  /** Say where the facts come from: read now from Stripe, or the event's snapshot. */
  fresh?: Freshness;
}

export interface RenderedEvent {
  text: string;
  nonce: string;
}

/**
 * An amount for the model: the integer the tool call carries (what a handler receives), then what
 * it means in its currency — `412000 (= $4,120.00 usd)`. The raw number alone invites misreading
 * cents as dollars (or yen as cents); the formatted one alone would hide the value the call holds.
 */
export function amountForModel(amount: number, currency: string): string {
  return `${amount} (= ${formatAmount(amount, currency)} ${currency.toLowerCase()})`;
}

/**
 * Strings cleaned of control characters and truncated, down to MAX_DEPTH (deeper: TOO_DEEP); keys
 * kept as plain keys.
 */
function cleanJson(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return cleanText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((v) => cleanJson(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [cleanText(k, 100), cleanJson(v, depth + 1)]),
  );
}

function plain(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function renderEventForPrompt(
  catalog: Catalog,
  event: PromptEvent,
  options: RenderOptions = {},
): RenderedEvent {
  const nonce = options.nonce ?? newNonce();
  const redact = options.redact ?? [];
  const def = catalog.lookup(event.type);
  const call = options.call ?? catalog.toolCall(event.type, event.payload);
  const mode = event.livemode ? 'live mode' : 'test mode';
  const lines = [
    // A stored event may carry a non-finite or out-of-range `created`: say so, do not throw.
    `Stripe event ${event.id}: ${event.type} (${mode}), created ${isoDate(event.created) ?? 'at an unknown time'}`,
  ];
  if (!def || !call) {
    lines.push('This event type is not in the catalog.');
    return { text: lines.join('\n'), nonce };
  }
  lines.push(
    `Tool: ${def.tool}. Actions: ${def.actions.join(', ')}.`,
    '',
    factsHeading(options.fresh),
  );
  const currency = typeof call.input.currency === 'string' ? call.input.currency : null;
  const isAmount = (key: string, value: unknown): value is number =>
    typeof value === 'number' && key.startsWith('amount');
  // The currency is said beside each amount; on its own line only when no amount shows it.
  const currencyShown =
    currency !== null && Object.entries(call.input).some(([key, value]) => isAmount(key, value));
  const missing: string[] = [];
  const untrusted: string[] = [];
  for (const [key, value] of Object.entries(call.input)) {
    const empty =
      value === null ||
      (Array.isArray(value) && value.length === 0) ||
      (typeof value === 'object' && value !== null && Object.keys(value).length === 0);
    if (empty) {
      missing.push(key);
      continue;
    }
    const kind = Object.hasOwn(def.untrusted, key) ? def.untrusted[key] : undefined;
    if (kind) {
      const shown =
        kind !== 'text' && redact.includes(kind) ? redactedMarker(kind) : cleanJson(value);
      untrusted.push(`${key}: ${JSON.stringify(shown)}`);
      continue;
    }
    if (key === 'currency' && currencyShown) continue;
    if (isAmount(key, value) && currency) {
      lines.push(`${key}: ${amountForModel(value, currency)}`);
    } else {
      lines.push(`${key}: ${plain(value)}`);
    }
  }
  if (missing.length) lines.push(`not set: ${missing.join(', ')}`);
  if (untrusted.length) {
    // One fence around all customer-written fields: the nonce in its tags is unguessable, so
    // nothing inside can end it early.
    lines.push(
      '',
      `Customer-written fields. ${fenceNotice(nonce)}`,
      openTag(nonce),
      ...untrusted,
      closeTag(nonce),
    );
  }
  return { text: lines.join('\n'), nonce };
}

function factsHeading(fresh: Freshness | undefined): string {
  if (!fresh) return 'Facts:';
  if (fresh.checkedAt === null) {
    return "Facts (the event's snapshot: not re-checked against Stripe, they may have changed since):";
  }
  const changed = fresh.changed.length
    ? `changed since the event: ${fresh.changed.join(', ')}`
    : 'unchanged since the event';
  return `Facts (as they are now, read from Stripe at ${isoDate(fresh.checkedAt / 1000)}; ${changed}):`;
}

/** The common hand-written prompt this rendering replaces; kept to measure against. */
export function naivePrompt(type: string, dataObject: unknown): string {
  return `A Stripe ${type} event occurred. Decide on next action.\n${JSON.stringify(dataObject, null, 2)}`;
}
