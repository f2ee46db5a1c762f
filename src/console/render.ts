import {
  EVENT_OUTCOMES,
  EVENT_STATUSES,
  type EventOutcome,
  type EventStatus,
  type HistoryEntry,
  type QueueCounts,
  type StoredEvent,
} from '../buffer/buffer.js';
import { ownerOf } from '../buffer/transitions.js';
import type { AgentState, EventView, Insights } from './backend.js';
import { MAX_QUERY, SEARCH_SCAN, type SearchResult } from './search.js';
import { escapeHtml } from '../html.js';
import { callAmount, formatAmount } from '../money.js';
import { accountOf } from '../stripe/objects.js';

/**
 * The console's HTML, rendered on the server. Every value that came from outside (an event's
 * payload, a customer's name, a model's rationale, a refusal's message) goes through `escapeHtml`: it is
 * shown as text and never becomes markup. The page's script adds behaviour, not content.
 */

const STATUS_WORDS: Record<EventStatus, string> = {
  pending: 'pending',
  claimed: 'claimed',
  awaiting_approval: 'awaiting approval',
  dead: 'dead',
  acked: 'acked',
};

export function time(ms: number | string): string {
  const d = typeof ms === 'number' ? new Date(ms) : new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/**
 * How a finished event ended, in words: each its own badge (text and colour, assets.ts `.o-*`),
 * in place of one green "acked" for an approved and a rejected call alike.
 */
export const OUTCOME_WORDS: Record<EventOutcome, string> = {
  dispatched: 'dispatched by the agent',
  approved: 'approved',
  rejected: 'rejected',
  expired: 'expired',
  decided: 'decided by a person',
  handled: 'handled by hand',
  superseded: 'superseded',
  no_action: 'no action needed',
  dry_run: 'dry run',
};

/** The status badge; a finished event with an outcome shows the outcome instead of "acked". */
function statusChip(event: Pick<StoredEvent, 'status' | 'outcome'>): string {
  if (event.status === 'acked' && event.outcome !== null) {
    return `<span class="chip o-${event.outcome}" data-outcome="${event.outcome}" title="acked: ${escapeHtml(event.outcome)}">${escapeHtml(OUTCOME_WORDS[event.outcome])}</span>`;
  }
  return `<span class="chip s-${event.status}">${escapeHtml(STATUS_WORDS[event.status])}</span>`;
}

/** Who holds a claimed event and for how long, in words. */
export function leaseText(event: StoredEvent, now: number): string {
  if (event.status !== 'claimed') return '';
  const left = (event.leaseExpiresAt ?? 0) - now;
  const who = ownerOf(event.leaseOwner);
  return left > 0
    ? `${who}, lease ${duration(left)} left`
    : `${who}, lease expired (returns to pending)`;
}

export interface Layout {
  title: string;
  /** Show the sign-out button (a token is configured and this is a signed-in page). */
  signedIn: boolean;
  body: string;
  /** What the live script refreshes on: the event id on its page. */
  eventId?: string;
  /** Follow the store's changes (the overview and event pages). */
  live?: boolean;
  /** A line over every page about how this server runs (the demo's scripted model). */
  banner?: string;
}

export function page(layout: Layout): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/console/assets/favicon.svg" type="image/svg+xml">
<title>${escapeHtml(layout.title)} · stripe-events-mcp console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body${layout.live ? ' data-live-feed' : ''}${layout.eventId ? ` data-event="${escapeHtml(layout.eventId)}"` : ''}>
<header class="top">
<a class="brand" href="/console">stripe-events-mcp <span>console</span></a>
<span id="live-state" class="live-state" aria-live="polite"></span>
${
  layout.signedIn
    ? '<form method="post" action="/console/logout" class="signout"><button type="submit">Sign out</button></form>'
    : ''
}
</header>
${layout.banner ? `<p class="banner" role="note">${escapeHtml(layout.banner)}</p>` : ''}
<div id="flash" role="status" aria-live="polite"></div>
<main>
${layout.body}
</main>
</body>
</html>`;
}

export function signInPage(message?: string): string {
  return page({
    title: 'Sign in',
    signedIn: false,
    body: `<section class="card signin">
<h1>Sign in</h1>
<p>Enter your token: the one <code>people add</code> printed for you, or the administrator's <code>MCP_AUTH_TOKEN</code>.</p>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/console/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</section>`,
  });
}

/** Every form that posts, except signing in and out: the console's actions, whatever page shows them. */
const ACTION_FORM = /<form\b[^>]*\bmethod="post"[^>]*>[\s\S]*?<\/form>/gi;

/**
 * A page for someone who may only view: every action form removed (Approve, Reject, Replay, Ack,
 * and any a page adds later: one filter, not a condition in each form), leaving sign-out. The
 * server refuses their posts anyway (403); this keeps buttons they cannot use off their screen.
 */
export function withoutActions(html: string): string {
  return html.replace(ACTION_FORM, (form) =>
    /action="\/console\/(logout|login)"/.test(form) ? form : '',
  );
}

export function messagePage(title: string, message: string, back: string, signedIn: boolean) {
  return page({
    title,
    signedIn,
    body: `<section class="card"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p><a href="${escapeHtml(back)}">Back</a></p></section>`,
  });
}

// ---------------------------------------------------------------------------------------------
// The overview

export interface OverviewData {
  counts: QueueCounts;
  events: StoredEvent[];
  older: number | null;
  filter: {
    status: EventStatus | null;
    type: string | null;
    /** Only finished events that ended so. */
    outcome: EventOutcome | null;
    through: number | null;
  };
  types: string[];
  insights: Insights;
  agent: AgentState;
  /** The tool each listed event maps to (by type). */
  toolOf: (type: string) => string | null;
  /** Each listed event's amount in its currency (`$4,120.00`), or null when it has none. */
  amountOf: (event: StoredEvent) => string | null;
  /** A search's results, shown instead of the queue; null without a query. */
  search?: SearchResult | null;
  now: number;
}

/** Shown in a queue row; the whole of it is in the row's title and on the event's page. */
const ROW_ERROR_CHARS = 160;

function shortened(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function overviewHref(filter: {
  status?: string | null;
  type?: string | null;
  outcome?: string | null;
  through?: number | null;
}): string {
  const q = new URLSearchParams();
  if (filter.status) q.set('status', filter.status);
  if (filter.type) q.set('type', filter.type);
  if (filter.outcome) q.set('outcome', filter.outcome);
  if (filter.through) q.set('through', String(filter.through));
  const s = q.toString();
  return s ? `/console?${s}` : '/console';
}

function countsSection(counts: QueueCounts, filter: OverviewData['filter']): string {
  const items = EVENT_STATUSES.map(
    (s) =>
      `<li><a class="count s-${s}${filter.status === s ? ' current' : ''}" href="${escapeHtml(
        overviewHref({ status: s, type: filter.type }),
      )}"><span class="n" data-count="${s}">${counts[s]}</span> <span class="label">${escapeHtml(
        STATUS_WORDS[s],
      )}</span></a></li>`,
  ).join('');
  return `<section id="counts" data-live aria-label="Counts by status"><ul class="counts">${items}</ul></section>`;
}

export function chartSvg(insights: Insights): string {
  const W = 600;
  const H = 150;
  const pad = 24;
  const bins = insights.bins;
  const max = Math.max(1, ...bins.map((b) => Math.max(b.received, b.decided)));
  const slot = (W - pad) / bins.length;
  const bar = Math.max(1, slot / 2 - 0.5);
  const y = (v: number) => H - pad - ((H - 2 * pad) * v) / max;
  const rects = bins
    .map((b, i) => {
      const x = pad + i * slot;
      const parts: string[] = [];
      if (b.received > 0) {
        parts.push(
          `<rect class="rec" x="${x.toFixed(1)}" y="${y(b.received).toFixed(1)}" width="${bar.toFixed(1)}" height="${(H - pad - y(b.received)).toFixed(1)}"><title>${escapeHtml(`${time(b.start)}: ${b.received} received`)}</title></rect>`,
        );
      }
      if (b.decided > 0) {
        parts.push(
          `<rect class="dec" x="${(x + bar).toFixed(1)}" y="${y(b.decided).toFixed(1)}" width="${bar.toFixed(1)}" height="${(H - pad - y(b.decided)).toFixed(1)}"><title>${escapeHtml(`${time(b.start)}: ${b.decided} decided`)}</title></rect>`,
        );
      }
      return parts.join('');
    })
    .join('');
  const received = bins.reduce((n, b) => n + b.received, 0);
  const decided = bins.reduce((n, b) => n + b.decided, 0);
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(
    `Last hour: ${received} events received, ${decided} decisions made`,
  )}">
<line class="axis" x1="${pad}" y1="${H - pad}" x2="${W}" y2="${H - pad}"/>
<text class="tick" x="${pad}" y="${H - 6}">−60 min</text>
<text class="tick" x="${pad + (W - pad) / 2}" y="${H - 6}" text-anchor="middle">−30 min</text>
<text class="tick" x="${W}" y="${H - 6}" text-anchor="end">now</text>
<text class="tick" x="${pad - 4}" y="${pad}" text-anchor="end">${max}</text>
<text class="tick" x="${pad - 4}" y="${H - pad}" text-anchor="end">0</text>
${rects}
</svg>
<p class="legend"><span class="key rec"></span> received (${received}) <span class="key dec"></span> decisions (${decided})${insights.capped ? ' — at least: the busiest hours are sampled' : ''}</p>`;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function agentText(agent: AgentState): string {
  return [storeWide(agent), ...loopsText(agent)].join(' · ');
}

function storeWide(agent: AgentState): string {
  if (agent.paused) {
    const p = agent.paused;
    const since = p.since ? ` since ${time(p.since)}` : '';
    return `paused (${p.reason})${since}${p.note ? `: ${p.note}` : ''}${p.by ? ` — by ${p.by}` : ''}`;
  }
  if ((agent.loops ?? []).some((l) => l.paused !== null)) return 'no pause for the whole store';
  if (!agent.running) return 'not running in this process (start with `agent` or `serve --agent`)';
  return 'running';
}

/** With several loops on the store, each one's own state: a breaker pauses only its process. */
function loopsText(agent: AgentState): string[] {
  const loops = agent.loops ?? [];
  if (loops.length < 2 && !loops.some((l) => l.paused && !agent.paused)) return [];
  return loops.map(
    (l) =>
      `${l.host} pid ${l.pid}: ${l.paused === null ? 'running' : `paused (${l.paused}) since ${time(l.since)}`}`,
  );
}

function insightsSection(insights: Insights, agent: AgentState): string {
  const mixRows = Object.entries(insights.mix)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([tool, actions]) =>
        `<tr><th scope="row">${escapeHtml(tool)}</th><td>${Object.entries(actions)
          .sort((a, b) => b[1] - a[1])
          .map(([action, n]) => `<span class="pill">${escapeHtml(action)} ${n}</span>`)
          .join(' ')}</td></tr>`,
    )
    .join('');
  const waits = insights.approvalWaits;
  const failures = insights.dispatchFailures
    .map(
      (f) =>
        `<li><a href="/console/event/${encodeURIComponent(f.id)}">${escapeHtml(f.id)}</a> <span class="muted">${escapeHtml(time(f.at))} ${escapeHtml(f.tool)}</span><br><span class="note">${escapeHtml(f.note)}</span></li>`,
    )
    .join('');
  return `<aside id="insights" data-live class="card insights" aria-label="Decisions and approvals">
<h2>Agent</h2>
<p id="agent-state" data-running="${agent.running}">${escapeHtml(agentText(agent))}</p>
<h2>Decisions by tool <span class="muted">(last hour)</span></h2>
${mixRows ? `<table class="mix"><tbody>${mixRows}</tbody></table>` : '<p class="muted">No decisions in the last hour.</p>'}
<h2>Approval waits</h2>
${
  waits.length
    ? `<p>${waits.length} answered; median ${escapeHtml(duration(median(waits)))}, longest ${escapeHtml(duration(Math.max(...waits)))}</p>`
    : '<p class="muted">No approvals answered in the last hour.</p>'
}
<h2>Dispatch failures</h2>
${failures ? `<ul class="failures">${failures}</ul>` : '<p class="muted">None in the last hour.</p>'}
<p class="muted small">From the histories of the ${insights.scanned} newest events received in the last hour${insights.capped ? ' (bounded: older ones are not counted)' : ''}.</p>
</aside>`;
}

function filterForm(data: OverviewData): string {
  const statusOptions = ['', ...EVENT_STATUSES]
    .map(
      (s) =>
        `<option value="${escapeHtml(s)}"${(data.filter.status ?? '') === s ? ' selected' : ''}>${escapeHtml(
          s ? STATUS_WORDS[s as EventStatus] : 'every status',
        )}</option>`,
    )
    .join('');
  const types = [
    ...new Set([...(data.filter.type ? [data.filter.type] : []), ...data.types]),
  ].sort();
  const typeOptions = ['', ...types]
    .map(
      (t) =>
        `<option value="${escapeHtml(t)}"${(data.filter.type ?? '') === t ? ' selected' : ''}>${escapeHtml(t || 'every type')}</option>`,
    )
    .join('');
  const outcomeOptions = ['', ...EVENT_OUTCOMES]
    .map(
      (o) =>
        `<option value="${escapeHtml(o)}"${(data.filter.outcome ?? '') === o ? ' selected' : ''}>${escapeHtml(
          o ? OUTCOME_WORDS[o as EventOutcome] : 'any outcome',
        )}</option>`,
    )
    .join('');
  const f = data.filter;
  return `<form class="filter" method="get" action="/console">
<label>Status <select name="status">${statusOptions}</select></label>
<label>Type <select name="type">${typeOptions}</select></label>
<label>Outcome <select name="outcome">${outcomeOptions}</select></label>
<button type="submit">Filter</button>
${f.status || f.type || f.outcome ? '<a href="/console">Clear</a>' : ''}
</form>`;
}

function searchForm(query: string | null): string {
  return `<form class="search" method="get" action="/console" role="search">
<label for="q">Find an event</label>
<input id="q" name="q" type="search" value="${escapeHtml(query ?? '')}" maxlength="${MAX_QUERY}" placeholder="evt_…, dp_…, in_…, cus_… or an email" autocomplete="off" spellcheck="false">
<button type="submit">Search</button>
${query ? '<a href="/console">Clear</a>' : ''}
</form>`;
}

/** The queue's head row; each cell's label is repeated on it for the stacked phone layout. */
const COLUMNS = ['Event', 'Type', 'Status', 'Tool', 'Amount', 'Attempts', 'Received'] as const;

function queueTable(caption: string, events: readonly StoredEvent[], data: OverviewData): string {
  const rows = events
    .map((e) => {
      const tool = data.toolOf(e.type);
      const amount = data.amountOf(e);
      const lease = leaseText(e, data.now);
      const error = e.lastError
        ? `<div class="muted small err" title="${escapeHtml(e.lastError)}">${escapeHtml(shortened(e.lastError, ROW_ERROR_CHARS))}</div>`
        : '';
      return `<tr data-id="${escapeHtml(e.id)}" class="row s-${e.status}">
<td class="id" data-label="Event"><a href="/console/event/${encodeURIComponent(e.id)}" title="${escapeHtml(e.id)}">${escapeHtml(e.id)}</a></td>
<td data-label="Type">${escapeHtml(e.type)}</td>
<td data-label="Status">${statusChip(e)}${lease ? `<div class="muted small">${escapeHtml(lease)}</div>` : ''}${error}</td>
<td data-label="Tool">${tool ? escapeHtml(tool) : '<span class="muted">—</span>'}</td>
<td data-label="Amount" class="num amount">${amount === null ? '<span class="muted">—</span>' : escapeHtml(amount)}</td>
<td data-label="Attempts" class="num">${e.attempts}</td>
<td data-label="Received" title="${escapeHtml(time(e.receivedAt))}">${escapeHtml(ago(e.receivedAt, data.now))}</td>
</tr>`;
    })
    .join('');
  const head = COLUMNS.map(
    (c) => `<th scope="col"${c === 'Amount' ? ' class="num"' : ''}>${c}</th>`,
  ).join('');
  return `<table class="queue">
<caption>${caption}</caption>
<thead><tr>${head}</tr></thead>
<tbody>${rows || `<tr><td colspan="${COLUMNS.length}" class="muted">No events.</td></tr>`}</tbody>
</table>`;
}

/** A search's answer: what was asked (as text), what matched, and how far the scan read. */
function searchSection(result: SearchResult, data: OverviewData): string {
  const n = result.events.length;
  const caption = `${n}${result.more ? '+' : ''} event${n === 1 ? '' : 's'} matching <q class="mono">${escapeHtml(result.query)}</q>, newest first`;
  const bound = result.cut
    ? `Searched the newest ${SEARCH_SCAN.toLocaleString('en-US')} arrivals (${result.scanned.toLocaleString('en-US')} events); older events were not searched, except by event id.`
    : `Searched every stored event (${result.scanned.toLocaleString('en-US')}).`;
  const more = result.more ? ` Only the newest ${n} are shown.` : '';
  return `<section id="queue" aria-label="Search results">
${queueTable(caption, result.events, data)}
<p class="muted small" id="search-bound">${escapeHtml(bound + more)}</p>
</section>`;
}

function queueSection(data: OverviewData): string {
  const f = data.filter;
  const kept = { status: f.status, type: f.type, outcome: f.outcome };
  const nav = [
    f.through ? `<a href="${escapeHtml(overviewHref(kept))}">Newest</a>` : '',
    data.older
      ? `<a rel="next" href="${escapeHtml(overviewHref({ ...kept, through: data.older }))}">Older</a>`
      : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const ended = f.outcome ? ` ended ${escapeHtml(OUTCOME_WORDS[f.outcome])}` : '';
  const caption = `${escapeHtml(f.status ? STATUS_WORDS[f.status] : 'All events')}${f.type ? ` of type ${escapeHtml(f.type)}` : ''}${ended}, newest first`;
  return `<section id="queue" data-live aria-label="Queue">
${queueTable(caption, data.events, data)}
${nav ? `<nav class="pager">${nav}</nav>` : ''}
</section>`;
}

export function overviewBody(data: OverviewData): string {
  return `${countsSection(data.counts, data.filter)}
<div class="overview">
<section class="card" aria-label="Last hour">
<h2>Last hour</h2>
<div id="chart" data-live>${chartSvg(data.insights)}</div>
</section>
${insightsSection(data.insights, data.agent)}
</div>
${searchForm(data.search?.query ?? null)}
${data.search ? '' : filterForm(data)}
${data.search ? searchSection(data.search, data) : queueSection(data)}`;
}

// ---------------------------------------------------------------------------------------------
// One event

function valueText(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/**
 * A fact's value as text. An amount (`amount`, `amount_due`, … in minor units) reads in its
 * currency first, the integer the handler receives after it: `$4,120.00 (412000)`.
 */
function factText(key: string, value: unknown, currency: unknown): string {
  if (
    key.startsWith('amount') &&
    typeof value === 'number' &&
    Number.isFinite(value) &&
    typeof currency === 'string' &&
    currency !== ''
  ) {
    return `${formatAmount(value, currency)} (${value})`;
  }
  return valueText(value);
}

function factsList(input: Record<string, unknown>): string {
  const rows = Object.entries(input)
    .map(
      ([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(factText(k, v, input.currency))}</dd>`,
    )
    .join('');
  return rows ? `<dl class="facts">${rows}</dl>` : '<p class="muted">No facts.</p>';
}

function lastOf(history: readonly HistoryEntry[], kind: HistoryEntry['kind']) {
  return [...history].reverse().find((h) => h.kind === kind);
}

/** The facts line recorded with decision `d`: read fresh from Stripe, or the snapshot alone. */
function factsSeen(history: readonly HistoryEntry[], d: HistoryEntry): string | undefined {
  const i = history.lastIndexOf(d);
  const seen = history
    .slice(0, i)
    .reverse()
    .find(
      (h) =>
        h.kind === 'decision' ||
        (h.kind === 'note' && (h.outcome === 'fresh' || h.outcome === 'snapshot')),
    );
  if (!seen || seen.kind !== 'note') return undefined;
  return seen.outcome === 'snapshot' ? `⚠ snapshot only — ${seen.note ?? ''}` : seen.note;
}

function decisionSection(history: readonly HistoryEntry[]): string {
  // The model's decision, and a person's verdict on it when one came after (a rejection).
  const d = [...history].reverse().find((h) => h.kind === 'decision' && h.by === undefined);
  const verdict = [...history]
    .reverse()
    .find((h) => h.kind === 'decision' && h.by !== undefined && (!d || h.at >= d.at));
  if (!d && !verdict) {
    return '<section id="decision" data-live class="card"><h2>Decision</h2><p class="muted">No decision yet.</p></section>';
  }
  const rows: [string, string | undefined][] = [];
  if (d) {
    const input = d.tool_call?.input ?? {};
    const action =
      typeof input.action === 'string' && d.outcome === 'decided' ? input.action : d.outcome;
    // An invalid (or over-budget) decision's note is the failure's detail: the history shows it,
    // collapsed, and the summary the sentence; here it would be a third copy.
    const failed = d.outcome === 'invalid' || d.outcome === 'budget';
    const rationale =
      typeof input.rationale === 'string' ? input.rationale : failed ? undefined : d.note;
    rows.push(
      ['Model', d.model],
      ['Action', action],
      ['Tool', d.tool_call?.name],
      ['Rationale', rationale],
      ['Tokens', d.usage ? `${d.usage.input_tokens} in, ${d.usage.output_tokens} out` : undefined],
      ['Latency', d.latency_ms !== undefined ? duration(d.latency_ms) : undefined],
      ['At', time(d.at)],
      // What the decision was made on (agent/event-work.ts records it beside the decision):
      // a person approving a call made on the snapshot alone should know it.
      ['Facts', factsSeen(history, d)],
    );
  }
  if (verdict) {
    rows.push([
      verdict.outcome === 'rejected' ? 'Rejected by' : 'Decided by',
      `${verdict.by} at ${time(verdict.at)}${verdict.note ? `: ${verdict.note}` : ''}`,
    ]);
  }
  const decided = d?.tool_call
    ? `<details><summary>Decided call (${escapeHtml(d.tool_call.name)})</summary>${factsList(d.tool_call.input)}</details>`
    : '';
  return `<section id="decision" data-live class="card"><h2>Decision</h2><dl class="facts">${rows
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`)
    .join('')}</dl>${decided}</section>`;
}

/** An entry's note: the text, its detail collapsed, or a pointer to the last error shown above. */
function historyNote(h: HistoryEntry, lastError: string | null): string {
  if (!h.note) return '';
  if (h.kind === 'claimed') return `<div class="note">${escapeHtml(`by ${ownerOf(h.note)}`)}</div>`;
  // The summary says the last error once; entries that recorded the same words point to it (the
  // nacks; and, in events failed before the sentence and its detail were told apart, the
  // decisions too).
  if (h.note === lastError) {
    return '<div class="note muted">the last error, shown above</div>';
  }
  // A failed decision's note is its detail: every request's calls and issues, long and technical.
  if (h.kind === 'decision' && h.outcome === 'invalid') {
    return `<details class="detail"><summary>What the model sent</summary><pre>${escapeHtml(h.note)}</pre></details>`;
  }
  return `<div class="note">${escapeHtml(h.note)}</div>`;
}

function historySection(history: readonly HistoryEntry[], lastError: string | null): string {
  const items = history
    .map((h) => {
      const bits = [
        h.by ? `by ${h.by}` : '',
        h.outcome ? `outcome ${h.outcome}` : '',
        h.tool_call ? `→ ${h.tool_call.name}` : '',
        h.model ? `model ${h.model}` : '',
      ].filter(Boolean);
      return `<li class="k-${escapeHtml(h.kind)}"><time datetime="${escapeHtml(h.at)}">${escapeHtml(time(h.at))}</time> <strong>${escapeHtml(h.kind)}</strong>${bits.length ? ` <span class="muted">${escapeHtml(bits.join(' · '))}</span>` : ''}${historyNote(h, lastError)}</li>`;
    })
    .join('');
  return `<section id="history" data-live class="card"><h2>History</h2><ol class="timeline">${items}</ol></section>`;
}

/** A deadline in words relative to now: `due in 3 days`, `due in 5 h`, `overdue by 2 h`. */
export function timeLeft(deadline: number, now: number): string {
  const ms = deadline - now;
  const abs = Math.abs(ms);
  const span =
    abs >= 2 * 86_400_000
      ? `${Math.floor(abs / 86_400_000)} days`
      : abs >= 7_200_000
        ? `${Math.floor(abs / 3_600_000)} h`
        : `${Math.max(1, Math.floor(abs / 60_000))} min`;
  return ms >= 0 ? `due in ${span}` : `overdue by ${span}`;
}

/** The facts that name a deadline, in the order they are looked for. */
const DEADLINE_FACTS = ['evidence_due_by', 'due_date'] as const;

/** The object's own deadline (a dispute's evidence_due_by, an invoice's due_date), if any. */
function deadlineOf(facts: Record<string, unknown>): { fact: string; at: number } | null {
  for (const fact of DEADLINE_FACTS) {
    const value = facts[fact];
    const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
    if (!Number.isNaN(at)) return { fact, at };
  }
  return null;
}

/** The facts that say who the customer is, as the catalog names them. */
const CUSTOMER_FACTS = [
  'customer_name',
  'customer_email',
  // A dispute names the customer in its evidence (customer-written: shown as text).
  'evidence_customer_name',
  'evidence_customer_email',
  'customer',
] as const;

/** Text a model wrote, as text: fenced in its own box and labelled, never markup. */
function modelWritten(label: string, text: string, field?: string): string {
  return `<div class="sent"${field ? ` data-field="${escapeHtml(field)}"` : ''}>
<div class="sent-label">${escapeHtml(label)} <span class="muted small">written by the model</span></div>
<blockquote class="model-text">${escapeHtml(text)}</blockquote>
</div>`;
}

/** The words the Approve confirmation repeats: the amount, or the call when it has none. */
export function confirmWords(amount: string | null, tool: string | null): string {
  if (amount !== null) return `I approve sending ${amount}`;
  return tool ? `I approve dispatching this ${tool} call` : 'I approve';
}

/**
 * What a person approves, on one screen, nothing collapsed: the tool and action, the text that
 * would go out (each string field of the decided call a handler sends on: a customer message, an
 * evidence summary — written by the model, so boxed and labelled as such), the amount in its
 * currency (412000 is $4,120.00, 50000 jpy is ¥50,000), the customer, why it waits (the approval
 * rule's words, or the model's when it asked for a person), the object's own deadline with the
 * time left, the model's rationale and the object in the Stripe Dashboard.
 */
function approvalCard(view: EventView, now: number): string {
  const { history } = view;
  const decided = [...history].reverse().find((h) => h.kind === 'decision' && h.tool_call);
  const call = decided?.tool_call ?? null;
  const held = [...history].reverse().find((h) => h.kind === 'held');
  const facts = { ...view.toolCall?.input, ...call?.input };
  const amount = callAmount(facts);
  const action = typeof call?.input.action === 'string' ? call.input.action : null;
  const what = call
    ? `<span class="mono">${escapeHtml(call.name)}</span>${action ? ` <span class="pill">${escapeHtml(action)}</span>` : ''}`
    : 'a person must decide (the model asked a person; no call was decided)';
  const rows: string[] = [];
  const customer = [
    ...new Set(
      CUSTOMER_FACTS.map((k) => facts[k]).filter(
        (v): v is string => typeof v === 'string' && v !== '',
      ),
    ),
  ].join(' · ');
  if (customer) rows.push(`<dt>Customer</dt><dd class="customer">${escapeHtml(customer)}</dd>`);
  const deadline = deadlineOf(facts);
  if (deadline) {
    rows.push(
      `<dt>Deadline</dt><dd class="deadline"><strong>${escapeHtml(timeLeft(deadline.at, now))}</strong> <span class="muted small">${escapeHtml(`${deadline.fact} ${time(deadline.at)}`)}</span></dd>`,
    );
  }
  if (view.dashboardUrl) {
    rows.push(
      `<dt>Stripe</dt><dd><a class="dashboard" href="${escapeHtml(view.dashboardUrl)}" target="_blank" rel="noopener noreferrer">Open ${escapeHtml(view.event.objectId ?? '')} in the Dashboard${view.event.livemode ? '' : ' (test mode)'}</a></dd>`,
    );
  }
  // What goes out: the decision's text fields other than its action and rationale.
  const decisionNames = new Set((view.decisionFields ?? []).map((f) => f.name));
  const sent = call
    ? Object.entries(call.input)
        .filter(
          ([k, v]) =>
            decisionNames.has(k) &&
            k !== 'action' &&
            k !== 'rationale' &&
            typeof v === 'string' &&
            v !== '',
        )
        .map(([k, v]) => modelWritten(k, String(v), k))
    : [];
  const rationale = typeof call?.input.rationale === 'string' ? call.input.rationale : null;
  return `<div class="approval" id="approval-card" aria-label="Awaiting approval">
<p>Awaiting approval: ${what}${amount === null ? '' : ` for <strong class="amount">${escapeHtml(amount)}</strong>`}</p>
${held?.note ? `<p class="held"><span class="muted small">Held because</span> <span class="why">${escapeHtml(held.note)}</span></p>` : ''}
${rows.length ? `<dl class="facts card-facts">${rows.join('')}</dl>` : ''}
${call ? `<h3>Text that would be sent</h3>${sent.length ? sent.join('') : '<p class="muted small">None: this call sends no text.</p>'}` : ''}
${rationale ? modelWritten("The model's rationale", rationale) : ''}
</div>`;
}

/** What a person filled in the ask-a-person form, and what was wrong with it (kept on error). */
export interface DecideFormState {
  values: Record<string, string>;
  issues: readonly { field: string; message: string }[];
  /** A refusal that is no field's (the event changed meanwhile …). */
  message?: string;
}

/**
 * The ask-a-person form: the tool's decision fields (the same schema the model's decision is
 * checked by), each with its error beside it when a post was refused; the values stay filled.
 * A plain form post (the page's script leaves it alone) so it works without JavaScript.
 */
function decideForm(view: EventView, state: DecideFormState | undefined): string {
  const fields = view.decisionFields ?? [];
  if (fields.length === 0) return '';
  const id = encodeURIComponent(view.event.id);
  const issueOf = (name: string) =>
    (state?.issues ?? [])
      .filter((i) => i.field === name)
      .map((i) => i.message)
      .join('; ');
  const unknown = (state?.issues ?? []).filter((i) => !fields.some((f) => f.name === i.field));
  const inputs = fields
    .map((f) => {
      const value = state?.values[f.name] ?? '';
      const issue = issueOf(f.name);
      const fid = `decide-${f.name}`;
      const described = issue ? ` aria-invalid="true" aria-describedby="${fid}-error"` : '';
      const control =
        f.kind === 'choice'
          ? `<select id="${fid}" name="${escapeHtml(f.name)}"${f.required ? ' required' : ''}${described}><option value="">choose…</option>${f.options
              .map(
                (o) =>
                  `<option value="${escapeHtml(o)}"${o === value ? ' selected' : ''}>${escapeHtml(o)}</option>`,
              )
              .join('')}</select>`
          : `<textarea id="${fid}" name="${escapeHtml(f.name)}" rows="${f.name === 'rationale' ? 2 : 3}" maxlength="2000"${described}>${escapeHtml(value)}</textarea>`;
      return `<div class="field${issue ? ' invalid' : ''}">
<label for="${fid}">${escapeHtml(f.name)}${f.required ? '' : ' <span class="muted">(optional)</span>'}</label>
${f.description ? `<div class="muted small">${escapeHtml(f.description)}</div>` : ''}
${control}
${issue ? `<div class="field-error" id="${fid}-error" role="alert">${escapeHtml(issue)}</div>` : ''}
</div>`;
    })
    .join('');
  return `<form method="post" action="/console/event/${id}/decide" class="decide" data-native>
<h3>Decide instead of the model</h3>
<p class="muted small">Choose the action and fill its fields: they are checked by the same rules as the model's decision, then dispatched like an approved call.</p>
${state?.message ? `<p class="field-error" role="alert">${escapeHtml(state.message)}</p>` : ''}
${unknown.length ? `<p class="field-error" role="alert">${escapeHtml(unknown.map((i) => i.message).join('; '))}</p>` : ''}
${inputs}
<button type="submit" class="primary">Dispatch this decision</button>
</form>
<form method="post" action="/console/event/${id}/handled" class="act handled"><label for="handled-note">Note</label><input id="handled-note" name="note" required maxlength="1000" placeholder="what was done by hand"><button type="submit">Mark handled</button><span class="muted small">acks it, dispatches nothing</span></form>`;
}

function actionsSection(view: EventView, now: number, decide?: DecideFormState): string {
  const { event } = view;
  const id = encodeURIComponent(event.id);
  const forms: string[] = [];
  if (event.status === 'awaiting_approval') {
    const call = [...view.history].reverse().find((h) => h.kind === 'decision')?.tool_call ?? null;
    forms.push(approvalCard(view, now));
    if (call) {
      const amount = callAmount({ ...view.toolCall?.input, ...call.input });
      // The confirmation repeats the amount; `required` stops the post without it (no script
      // needed) and the server refuses an approval that does not carry it.
      forms.push(
        `<form method="post" action="/console/event/${id}/approve" class="act approve"><label class="confirm"><input type="checkbox" name="confirm" value="yes" required> ${escapeHtml(confirmWords(amount, call.name))}</label><button type="submit" class="primary">Approve</button><span class="muted small">dispatches the decided call</span></form>`,
      );
    } else {
      forms.push(decideForm(view, decide));
    }
    forms.push(
      `<form method="post" action="/console/event/${id}/reject" class="act reject"><label for="reason">Reason</label><input id="reason" name="reason" required maxlength="1000"><button type="submit" class="danger">Reject</button></form>`,
    );
  }
  if (event.status === 'dead' || event.status === 'acked') {
    forms.push(
      `<form method="post" action="/console/event/${id}/replay" class="act"><button type="submit">Replay</button><span class="muted small">back to pending, attempts reset</span></form>`,
    );
  }
  if (event.status === 'pending') {
    forms.push(
      `<form method="post" action="/console/event/${id}/ack" class="act"><label for="note">Note <span class="muted">(optional)</span></label><input id="note" name="note" maxlength="1000"><button type="submit">Ack</button></form>`,
    );
  }
  return `<section id="actions" data-live class="card actions" aria-label="Actions">${
    forms.length
      ? forms.join('')
      : `<p class="muted">No action for a ${escapeHtml(STATUS_WORDS[event.status])} event.</p>`
  }</section>`;
}

export function eventBody(view: EventView, now: number, decide?: DecideFormState): string {
  const { event, toolCall, history } = view;
  let pretty = event.payload;
  try {
    pretty = JSON.stringify(JSON.parse(event.payload), null, 2);
  } catch {
    // shown as received
  }
  const lease = leaseText(event, now);
  const amount = callAmount(toolCall?.input);
  const account = accountOf(event.payload);
  const rows: [string, string][] = [
    ['Type', event.type],
    ...(amount === null ? [] : ([['Amount', amount]] as [string, string][])),
    ['Attempts', String(event.attempts)],
    ['Received', time(event.receivedAt)],
    ['Created', time(event.created * 1000)],
    ['Object', event.objectId ?? '—'],
    ['Mode', event.livemode ? 'live' : 'test'],
    ...(account ? ([['Account', `${account} (connected account)`]] as [string, string][]) : []),
  ];
  if (lease) rows.push(['Claimed by', lease]);
  if (event.retryAt) rows.push(['Retry from', time(event.retryAt)]);
  // The last error, once, beside the status: the history points here rather than repeat it.
  const lastError = event.lastError
    ? `<p class="last-error"><span class="label">Last error</span> <span class="text">${escapeHtml(event.lastError)}</span></p>`
    : '';
  return `<p><a href="/console">← Queue</a></p>
<section id="summary" data-live class="card">
<h1><span class="mono id">${escapeHtml(event.id)}</span> ${statusChip(event)}</h1>
${lastError}
<dl class="facts">${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>
</section>
${actionsSection(view, now, decide)}
<div class="two">
<section id="toolcall" data-live class="card"><h2>Tool call${toolCall ? `: <span class="mono">${escapeHtml(toolCall.name)}</span>` : ''}</h2>${
    toolCall ? factsList(toolCall.input) : '<p class="muted">This type maps to no tool.</p>'
  }</section>
${decisionSection(history)}
</div>
${historySection(history, event.lastError)}
<details id="raw" class="card"><summary>Raw payload</summary><pre>${escapeHtml(pretty)}</pre></details>`;
}
