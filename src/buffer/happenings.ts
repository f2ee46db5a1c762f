import { NOT_PAUSED, type AgentPause } from './buffer.js';

/**
 * The queue's own happenings a person or agent must react to (MCP Events' queue types,
 * docs/MCP.md "Events"): a call held for approval, an event gone dead, the agent paused. Each
 * store keeps them in an append-only log written in the same commit as the change itself (SQLite:
 * the writer's transaction; Redis: the Lua script that holds, kills or pauses; memory: the same
 * call), numbered by a sequence of their own that never goes back (not even after a prune), and
 * pruned with the events (older than the 7-day window). A reader resumes exactly after a number.
 */

export const HAPPENING_KINDS = ['held', 'dead', 'paused'] as const;
export type HappeningKind = (typeof HAPPENING_KINDS)[number];

export interface Happening {
  /** Position in the log: 1, 2, 3… per store, never reused. */
  seq: number;
  kind: HappeningKind;
  /** When it was committed (ms). */
  at: number;
  /** The event held or gone dead; null for a pause. */
  eventId: string | null;
  /** The pause as set, for `paused`; null otherwise. */
  pause: AgentPause | null;
}

/** How many happenings one read returns at most. */
export const MAX_HAPPENINGS_READ = 500;

/** The change kinds that are happenings (transitions.ts `change`). */
export function happeningOf(change: string | null | undefined): 'held' | 'dead' | null {
  return change === 'held' || change === 'dead' ? change : null;
}

/** The pause as stored, its fields in one order, so two texts are equal when the pauses are. */
export function pauseText(pause: AgentPause): string {
  const p = pause.paused ? pause : NOT_PAUSED;
  return JSON.stringify({
    paused: p.paused,
    reason: p.reason,
    by: p.by,
    note: p.note,
    since: p.since,
    until: p.until,
  });
}

/**
 * Whether storing `nextText` over `previousText` (pause texts) is a happening: the agent became
 * paused, or its pause changed reason or note. The same pause again (even from another loop, at
 * another time), or a lift, is not: several loops finding the budget spent log it once. The Redis
 * script `sem_pause` applies the same rule.
 */
export function isPauseHappening(previousText: string | null, nextText: string): boolean {
  const next = JSON.parse(nextText) as AgentPause;
  if (next.paused !== true) return false;
  let previous: Partial<AgentPause> | null = null;
  try {
    previous = previousText ? (JSON.parse(previousText) as Partial<AgentPause>) : null;
  } catch {
    previous = null;
  }
  return !(
    previous?.paused === true &&
    (previous.reason ?? null) === next.reason &&
    (previous.note ?? null) === next.note
  );
}

/** The log's row as stored (SQLite row, Redis member): JSON of the fields. */
export function happeningFrom(row: {
  seq: number;
  kind: string;
  at: number;
  event_id: string | null;
  pause: string | null;
}): Happening {
  return {
    seq: row.seq,
    kind: row.kind as HappeningKind,
    at: row.at,
    eventId: row.event_id,
    pause: row.pause ? (JSON.parse(row.pause) as AgentPause) : null,
  };
}
