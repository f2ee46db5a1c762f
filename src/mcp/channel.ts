import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { LRUCache } from 'lru-cache';
import type { BufferChange, EventBuffer, EventStatus, StoredEvent } from '../buffer/buffer.js';
import type { Catalog, ToolCall } from '../catalog/catalog.js';
import { renderEventForPrompt } from '../catalog/prompt.js';
import { boundDepth } from '../catalog/depth.js';
import { cleanModelText } from '../catalog/model-text.js';
import { closeTag, fenceNotice, newNonce, openTag, type RedactKind } from '../catalog/untrusted.js';
import type { Logger } from '../logger.js';
import { formatAmount } from '../money.js';
import { PLAIN_KEY, plainAction, splitCall } from './view.js';

/**
 * Claude Code channels (research preview, Claude Code v2.1.80+): a server that declares
 * `experimental["claude/channel"]` may push `notifications/claude/channel` with `{content, meta}`,
 * and Claude Code puts it into the running session as
 * `<channel source="stripe-events" key="value"…>content</channel>`, so the model acts on an event
 * without being asked to look. Other clients ignore the method.
 *
 * Two parts: one ChannelFeed per process finds what became pending, awaiting approval or dead
 * (reading the store once however many sessions), and one ChannelSession per MCP session decides
 * when to speak: the first event after a quiet spell at once, then at most one notification per
 * interval, several events folded into one that counts them.
 */
export const CHANNEL_CAPABILITY = 'claude/channel';
export const CHANNEL_METHOD = 'notifications/claude/channel';

/** The shortest gap between two notifications of one session. */
export const CHANNEL_INTERVAL_MS = 1000;
/** While events keep coming, the gap doubles up to this: a long burst stays a handful of turns. */
const MAX_INTERVAL_MS = 8000;
/** Events a coalesced notification names; the rest are counted. */
const NAMED = 3;
/** Events a session remembers between two notifications (the rest are counted only). */
const KEPT = NAMED;
/** Events looked up per round of changes; the rest of a large round are counted only. */
const MAX_LOOKUPS = 20;
/** Rows an external-change scan reads per status. */
const SCAN_ROWS = 500;
const SCAN_PAGE = 100;
/** Another process's commits are scanned at most this often. */
const SCAN_GAP_MS = 250;
/** Announced (event, status, time) keys remembered, so a rescan never repeats one. */
const ANNOUNCED_MEMORY = 10_000;

/** The statuses a model should hear about. */
export type ChannelStatus = Extract<EventStatus, 'pending' | 'awaiting_approval' | 'dead'>;
const WATCHED: readonly ChannelStatus[] = ['pending', 'awaiting_approval', 'dead'];

/** The status a change leaves its event in, for the changes worth a notification. */
const STATUS_AFTER: Partial<Record<BufferChange['kind'], ChannelStatus>> = {
  queued: 'pending',
  replayed: 'pending',
  held: 'awaiting_approval',
  dead: 'dead',
};

export interface Announcement {
  event: StoredEvent;
  status: ChannelStatus;
  /** For an event awaiting approval: the decided call (null: the model asked for a person). */
  decided?: ToolCall | null;
  /** For an event awaiting approval: why it waits (model-written, so shown fenced). */
  reason?: string | null;
}

/** The channel side of one MCP session (see ChannelSession). */
export interface ChannelSink {
  push(found: readonly Announcement[], more: number): void;
}

/** What the feed needs from the hub: the sessions connected right now. */
export type ChannelSessions = () => Iterable<{ channel?: ChannelSink }>;

/**
 * Finds, per round of buffer changes, the events that now wait for a model, and hands them to
 * every session's ChannelSession. Local changes carry ids; another process's commits on a SQLite
 * store arrive as `external` without ids, so those trigger a bounded scan of the watched statuses
 * for events changed since the feed started and not yet announced.
 */
export class ChannelFeed {
  private readonly announced = new LRUCache<string, true>({ max: ANNOUNCED_MEMORY });
  /**
   * (event, status) pairs counted in a message's "…and N more" without being looked up: a rescan
   * (another process's commit, or this process's own commit seen by the poll before the writer's
   * answer) must not announce them a second time.
   */
  private readonly counted = new LRUCache<string, true>({ max: ANNOUNCED_MEMORY });
  private startedAt = Number.POSITIVE_INFINITY;
  /** Ids (with their new status) waiting to be looked up; bounded, overflow counted. */
  private ids = new Map<string, ChannelStatus>();
  private overflow = 0;
  private external = false;
  private working = false;
  private lastScanAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private lastPending: number | null = null;

  constructor(
    private readonly buffer: EventBuffer,
    private readonly logger: Logger,
    private readonly sessions: ChannelSessions,
  ) {}

  /** Called when the hub starts watching: only what changes from now on is announced. */
  start(): void {
    this.startedAt = Date.now();
    this.lastPending = null;
    void this.pendingCount().then((n) => (this.lastPending ??= n));
  }

  stop(): void {
    this.ids.clear();
    this.overflow = 0;
    this.external = false;
    this.startedAt = Number.POSITIVE_INFINITY;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Takes one round of changes; never waits on the store (the hub's round must not stall). */
  observe(changes: readonly BufferChange[]): void {
    if (!this.listening()) return;
    for (const change of changes) {
      if (change.kind === 'external') {
        this.external = true;
        continue;
      }
      const status = STATUS_AFTER[change.kind];
      if (!status || change.id === undefined) continue;
      if (this.ids.size >= MAX_LOOKUPS && !this.ids.has(change.id)) {
        const key = `${change.id}\u0000${status}`;
        if (this.counted.has(key)) continue;
        this.counted.set(key, true);
        this.overflow += 1;
      } else this.ids.set(change.id, status);
    }
    this.kick();
  }

  private listening(): boolean {
    for (const session of this.sessions()) if (session.channel) return true;
    return false;
  }

  private kick(): void {
    if (this.working || this.timer !== undefined) return;
    if (this.ids.size === 0 && this.overflow === 0 && !this.external) return;
    const wait = this.external ? this.lastScanAt + SCAN_GAP_MS - performance.now() : 0;
    if (wait > 0 && this.ids.size === 0 && this.overflow === 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, wait);
      return;
    }
    this.working = true;
    void this.work()
      .catch((error) => this.logger.warn('channel notifications failed', { error }))
      .finally(() => {
        this.working = false;
        this.kick();
      });
  }

  private async work(): Promise<void> {
    const ids = this.ids;
    let more = this.overflow;
    this.ids = new Map();
    this.overflow = 0;
    const found: Announcement[] = [];
    for (const [id, status] of ids) {
      const a = await this.lookUp(id, status);
      if (a) found.push(a);
    }
    if (this.external && performance.now() - this.lastScanAt >= SCAN_GAP_MS) {
      this.external = false;
      this.lastScanAt = performance.now();
      const scanned = await this.scan();
      found.push(...scanned.found);
      more += scanned.more;
    }
    if (found.length === 0 && more === 0) return;
    for (const session of this.sessions()) session.channel?.push(found, more);
  }

  private remember(event: StoredEvent, status: ChannelStatus): boolean {
    const key = `${event.id}\u0000${status}\u0000${event.updatedAt}`;
    if (this.announced.has(key)) return false;
    this.announced.set(key, true);
    return true;
  }

  /** The event as it is now, if it still has the status the change gave it. */
  private async lookUp(id: string, status: ChannelStatus): Promise<Announcement | null> {
    const event = await this.buffer.get(id);
    // Claimed or acked meanwhile (e.g. by the agent loop): nobody needs to be woken for it.
    if (!event || event.status !== status || !this.remember(event, status)) return null;
    return this.describe(event, status);
  }

  private async describe(event: StoredEvent, status: ChannelStatus): Promise<Announcement> {
    if (status !== 'awaiting_approval') return { event, status };
    const history = await this.buffer.history(event.id);
    const decision = history.findLast((h) => h.kind === 'decision');
    const held = history.findLast((h) => h.kind === 'held');
    return { event, status, decided: decision?.tool_call ?? null, reason: held?.note ?? null };
  }

  /**
   * Another process changed the store: events of the watched statuses changed since the feed
   * started and not announced yet. The scan reads the oldest rows first and stops at SCAN_ROWS;
   * when that leaves newer arrivals unseen, the pending count says how many.
   */
  private async scan(): Promise<{ found: Announcement[]; more: number }> {
    const found: Announcement[] = [];
    let truncated = false;
    for (const status of WATCHED) {
      let cursor: string | null = null;
      let read = 0;
      do {
        const page = await this.buffer.list({ statuses: [status], limit: SCAN_PAGE, cursor });
        read += page.events.length;
        cursor = page.nextCursor;
        for (const event of page.events) {
          if (event.updatedAt < this.startedAt) continue;
          if (this.counted.has(`${event.id}\u0000${status}`) || !this.remember(event, status)) {
            continue;
          }
          if (found.length < MAX_LOOKUPS) found.push(await this.describe(event, status));
        }
      } while (cursor && read < SCAN_ROWS);
      if (cursor && status === 'pending') truncated = true;
    }
    const before = this.lastPending;
    const now = await this.pendingCount();
    this.lastPending = now;
    const seenPending = found.filter((a) => a.status === 'pending').length;
    const unseen =
      truncated && before !== null && now !== null ? Math.max(0, now - before - seenPending) : 0;
    return { found, more: unseen };
  }

  private async pendingCount(): Promise<number | null> {
    try {
      return (await this.buffer.stats()).counts.pending;
    } catch {
      return null;
    }
  }
}

export interface ChannelSessionOptions {
  catalog: Catalog;
  redact: readonly RedactKind[];
  logger: Logger;
  /** The shortest gap between two notifications (tests may shorten it). */
  intervalMs?: number;
}

/**
 * When and what one session is told. The first event after a quiet spell goes out at once; what
 * arrives while waiting is folded into the next notification (the first few named, all counted),
 * and while a burst lasts the gap doubles, so a burst of any size is a handful of notifications.
 * Memory is bounded: KEPT announcements and a count.
 */
export class ChannelSession implements ChannelSink {
  private kept: Announcement[] = [];
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private readonly minInterval: number;
  private interval: number;
  private closed = false;

  constructor(
    private readonly server: McpServer,
    private readonly options: ChannelSessionOptions,
  ) {
    this.minInterval = options.intervalMs ?? CHANNEL_INTERVAL_MS;
    this.interval = this.minInterval;
  }

  push(found: readonly Announcement[], more: number): void {
    if (this.closed) return;
    for (const a of found) if (this.kept.length < KEPT) this.kept.push(a);
    this.count += found.length + more;
    if (this.count === 0 || this.timer !== undefined) return;
    const since = performance.now() - this.lastSentAt;
    // Quiet for a whole interval beyond the gap: the burst is over, back to the short gap.
    if (since >= this.interval + this.minInterval) this.interval = this.minInterval;
    if (since >= this.interval) {
      this.send();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Events came while waiting: the burst goes on, so the next gap is longer.
      this.interval = Math.min(this.interval * 2, MAX_INTERVAL_MS);
      this.send();
    }, this.interval - since);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.kept = [];
    this.count = 0;
  }

  private send(): void {
    const kept = this.kept;
    const count = this.count;
    this.kept = [];
    this.count = 0;
    if (count === 0 || this.closed) return;
    this.lastSentAt = performance.now();
    const params = channelMessage(kept, count, this.options.catalog, this.options.redact);
    this.server.server
      .notification({ method: CHANNEL_METHOD, params } as never)
      .catch((error: unknown) =>
        this.options.logger.debug('channel notification not delivered', { error }),
      );
  }
}

export interface ChannelMessage {
  content: string;
  meta: Record<string, string>;
}

/** Meta values are attributes outside any fence: only characters of ids, types and codes. */
function safe(value: string): string {
  return value.replace(/[^A-Za-z0-9_.:-]/g, '').slice(0, 100);
}

/**
 * A formatted amount as an attribute: `formatAmount` of a number and a checked three-letter code,
 * so it holds currency signs, letters, digits, separators and spaces only — filtered to those
 * anyway, so no quote or angle bracket can ever reach an attribute.
 */
function safeAmount(value: string): string {
  return value.replace(/[^\p{Sc}\p{L}0-9., -]/gu, '').slice(0, 40);
}

interface Facts {
  tool: string | null;
  amount: { value: number; currency: string } | null;
}

function factsOf(a: Announcement, catalog: Catalog): Facts {
  const def = catalog.lookup(a.event.type);
  // Of a decided call, only the catalog's facts: a number the model chose is no attribute.
  const call = a.decided
    ? splitCall(def, a.decided).facts
    : catalog.toolCall(a.event.type, a.event.payload);
  const named = call?.name ?? def?.tool ?? null;
  const tool = named === null ? null : safe(named) || null;
  const input = call?.input ?? {};
  const currency = typeof input.currency === 'string' ? input.currency : null;
  const key = Object.keys(input).find(
    (k) => k.startsWith('amount') && typeof input[k] === 'number',
  );
  const amount =
    key && currency && /^[a-zA-Z]{3}$/.test(currency)
      ? { value: input[key] as number, currency: currency.toLowerCase() }
      : null;
  return { tool, amount };
}

const STATUS_WORDS: Record<ChannelStatus, string> = {
  pending: 'pending',
  awaiting_approval: 'awaiting approval',
  dead: 'dead',
};

function metaOf(a: Announcement, facts: Facts): Record<string, string> {
  const meta: Record<string, string> = {
    event_id: safe(a.event.id),
    event_type: safe(a.event.type),
    status: a.status,
    livemode: String(a.event.livemode),
  };
  if (facts.tool) meta.tool = safe(facts.tool);
  if (facts.amount) {
    // The raw integer and code stay (programs read them); the formatted text is for the reader.
    meta.amount = String(facts.amount.value);
    meta.currency = facts.amount.currency;
    meta.amount_display = safeAmount(formatAmount(facts.amount.value, facts.amount.currency));
  }
  return meta;
}

const NEXT: Record<ChannelStatus, (id: string) => string> = {
  pending: (id) =>
    `Next: call get_event with id ${id} for the details, decide, then ack_event (with a note saying what you did) or nack_event (with a reason) so it leaves the queue.`,
  awaiting_approval: (id) =>
    `Next: show this decision to the user and ask; only with their consent call approve_action with id ${id} (it carries out the decided call), or reject_action with a reason. Never approve on your own.`,
  dead: (id) =>
    `Next: call get_event with id ${id} to read its history and last error; fix the cause, then replay_event to retry it, or ack_event with a note to close it.`,
};

/** The text and attributes of one notification: one event in full, or several counted. */
export function channelMessage(
  kept: readonly Announcement[],
  count: number,
  catalog: Catalog,
  redact: readonly RedactKind[],
): ChannelMessage {
  const first = kept[0];
  if (count === 1 && first) return single(first, catalog, redact);
  const lines = [`${count} Stripe events need attention.`];
  for (const a of kept.slice(0, NAMED)) {
    const facts = factsOf(a, catalog);
    const money = facts.amount
      ? `, ${formatAmount(facts.amount.value, facts.amount.currency)}`
      : '';
    lines.push(
      `- ${a.event.id} ${a.event.type}${facts.tool ? ` → ${facts.tool}` : ''} (${STATUS_WORDS[a.status]}${money})`,
    );
  }
  const named = Math.min(kept.length, NAMED);
  // Events only counted (a large round, or another process's backlog) are not "more" of a list.
  if (count > named && named > 0) lines.push(`…and ${count - named} more.`);
  lines.push(
    'Next: call list_pending_events (and list_approvals for decisions awaiting approval), then get_event for each; finish each with ack_event or nack_event. Approve or reject held decisions only with the user’s consent.',
  );
  const meta: Record<string, string> = { count: String(count) };
  if (first) {
    Object.assign(meta, metaOf(first, factsOf(first, catalog)));
    meta.event_ids = kept
      .slice(0, NAMED)
      .map((a) => safe(a.event.id))
      .join(',');
  }
  return { content: withoutChannelTags(lines.join('\n')), meta };
}

/**
 * Claude Code wraps the content in `<channel …>…</channel>`, and the attributes of that tag are
 * what says where a message comes from. Fenced text cannot close our fence, but it could still
 * spell a `</channel>` followed by a forged `<channel … by="user">`: every such tag in the content
 * loses its `<`, so nothing inside can end the message or open another. Our own text never
 * contains one.
 */
export function withoutChannelTags(content: string): string {
  return content.replace(/<(?=\s*\/?\s*channel)/gi, '&lt;');
}

function single(a: Announcement, catalog: Catalog, redact: readonly RedactKind[]): ChannelMessage {
  const nonce = newNonce();
  const facts = factsOf(a, catalog);
  const { event } = a;
  const def = catalog.lookup(event.type);
  const decided = a.decided ? splitCall(def, a.decided) : null;
  const action = decided
    ? plainAction(def, decided.decided.find(([key]) => key === 'action')?.[1])
    : null;
  const arrow = facts.tool ? ` → ${facts.tool}` : '';
  const head: Record<ChannelStatus, string> = {
    pending: `A Stripe event is pending: ${event.id} ${event.type}${arrow}.`,
    awaiting_approval: a.decided
      ? `A decision awaits approval: ${event.id} ${event.type}${arrow}${action ? ` (action: ${action})` : ''}.`
      : `Event ${event.id} ${event.type}${arrow} waits for a person: the agent asked for one instead of deciding.`,
    dead: `A Stripe event went dead after ${event.attempts} attempts: ${event.id} ${event.type}${arrow}.`,
  };
  const rendered = renderEventForPrompt(
    catalog,
    {
      id: event.id,
      type: event.type,
      created: event.created,
      livemode: event.livemode,
      payload: event.payload,
    },
    // The decided call's facts only: its decision fields are the model's, shown fenced below.
    { nonce, redact, call: decided?.facts },
  );
  const lines = [head[a.status], '', rendered.text];
  // Model-written and sink-written text (the decision's fields, why it waits, the handler's
  // error) in one fence, each value as a JSON string: it can quote the customer or carry
  // instructions, so it is read like customer text.
  const written: string[] = [];
  for (const [key, value] of decided?.decided ?? []) {
    if (key === 'action' && action !== null) continue;
    written.push(
      `${PLAIN_KEY.test(key) ? key : JSON.stringify(cleanModelText(key, 64))}: ${modelValue(value)}`,
    );
  }
  if (a.status === 'awaiting_approval' && a.reason) {
    written.push(`why it waits: ${JSON.stringify(cleanModelText(a.reason))}`);
  }
  if (a.status === 'dead' && event.lastError) {
    written.push(`last error: ${JSON.stringify(cleanModelText(event.lastError))}`);
  }
  if (written.length) {
    const notice = rendered.text.includes(fenceNotice(nonce)) ? '' : ` ${fenceNotice(nonce)}`;
    lines.push(
      '',
      `Written by a model, a webhook handler or a person, not by this server.${notice}`,
      openTag(nonce),
      ...written,
      closeTag(nonce),
    );
  }
  lines.push('', NEXT[a.status](event.id));
  return {
    content: withoutChannelTags(lines.join('\n')),
    meta: { ...metaOf(a, facts), count: '1' },
  };
}

/**
 * A decision field's value as one line of JSON, cleaned and bounded: a string is quoted, so its
 * line breaks and quotes stay escaped and it cannot pose as another line of the block.
 */
function modelValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(cleanModelText(value));
  return cleanModelText(JSON.stringify(boundDepth(value)) ?? 'null');
}
