import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import type { BufferChange, EventBuffer, QueueStats } from '../buffer/buffer.js';
import type { Catalog } from '../catalog/catalog.js';
import { cleanModelText } from '../catalog/model-text.js';
import type { Logger } from '../logger.js';
import { ChannelFeed, type ChannelSink } from './channel.js';
import { eventIdOfUri, PENDING_URI } from './uris.js';

/** Changes closer together than this share one round of notifications. */
export const COALESCE_MS = 10;
/** Log lines per round; a larger burst ends with one line that counts the rest. */
const MAX_LOG_LINES = 20;
const LOGGER_NAME = 'stripe-events-mcp';
/** The longest pause note a log line repeats (pause_agent takes at most 500 characters). */
const MAX_PAUSE_NOTE = 500;

/** One connected MCP session as the hub sees it. */
export interface HubSession {
  server: McpServer;
  /** Resource URIs this session subscribed to. */
  subscriptions: ReadonlySet<string>;
  /** Where Claude Code channel notifications go (channel.ts); none: the session gets none. */
  channel?: ChannelSink;
}

interface LogLine {
  level: LoggingLevel;
  data: Record<string, unknown> & { message: string };
}

const LEVEL: Partial<Record<BufferChange['kind'], LoggingLevel>> = {
  queued: 'info',
  acked: 'info',
  replayed: 'info',
  nacked: 'notice',
  held: 'notice',
  dead: 'warning',
};

const VERB: Partial<Record<BufferChange['kind'], string>> = {
  queued: 'queued',
  acked: 'acked',
  replayed: 'replayed',
  nacked: 'nacked (back to pending)',
  held: 'awaiting approval',
  dead: 'dead (attempts exhausted)',
};

/**
 * Turns the buffer's change feed into MCP notifications for every connected session: one watch
 * per process however many sessions. Changes are coalesced a little (a burst becomes one round
 * every COALESCE_MS; a lone change goes out at once) and the last change of a burst is never
 * dropped. Each round sends `notifications/resources/updated` to the sessions subscribed to an
 * affected URI, `notifications/resources/list_changed` when events arrived, and a log line per
 * event (`notifications/message`, filtered by each session's `logging/setLevel`).
 */
export class ChangeHub {
  private readonly sessions = new Set<HubSession>();
  private unwatch: (() => void) | undefined;
  private queue: BufferChange[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private flushing = false;
  private lastRoundAt = Number.NEGATIVE_INFINITY;
  /** Queue counts after the last round: what an external change is measured against. */
  private baseline: Promise<QueueStats | null> | undefined;
  private readonly channel: ChannelFeed;
  /** The agent pause as last announced (`running`, `paused:<reason>`); read when the hub starts. */
  private agentState: string | undefined;

  constructor(
    private readonly buffer: EventBuffer,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
    private readonly coalesceMs = COALESCE_MS,
  ) {
    this.channel = new ChannelFeed(buffer, logger, () => this.sessions);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Adds a session; the first one starts watching the buffer. Returns the leave function. */
  join(session: HubSession): () => void {
    this.sessions.add(session);
    if (!this.unwatch) {
      this.baseline = this.readStats();
      // The pause as it stands when watching starts: later changes of it are announced.
      this.buffer.agentPause().then(
        (p) => (this.agentState ??= p.paused ? `paused:${p.reason ?? 'manual'}` : 'running'),
        () => {},
      );
      this.channel.start();
      this.unwatch = this.buffer.watch((change) => this.onChange(change));
    }
    return () => this.leave(session);
  }

  private leave(session: HubSession): void {
    if (!this.sessions.delete(session) || this.sessions.size > 0) return;
    this.unwatch?.();
    this.unwatch = undefined;
    this.channel.stop();
    this.queue = [];
    this.cancelTimer();
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  private onChange(change: BufferChange): void {
    this.queue.push(change);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.flushing || this.queue.length === 0) return;
    const wait = this.lastRoundAt + this.coalesceMs - performance.now();
    const run = () => {
      this.timer = undefined;
      void this.round();
    };
    this.timer = wait <= 0 ? setImmediate(run) : setTimeout(run, wait);
  }

  private async round(): Promise<void> {
    this.flushing = true;
    this.lastRoundAt = performance.now();
    const changes = this.queue;
    this.queue = [];
    try {
      await this.deliver(changes);
    } catch (error) {
      this.logger.warn('mcp notifications failed', { error });
    } finally {
      this.flushing = false;
      // Changes that arrived meanwhile get their own round: the last one is never lost.
      this.schedule();
    }
  }

  private async deliver(changes: readonly BufferChange[]): Promise<void> {
    if (changes.length === 0 || this.sessions.size === 0) return;
    this.channel.observe(changes);
    const external = changes.some((c) => c.kind === 'external');
    const ids = new Set<string>();
    for (const c of changes) if (c.id !== undefined) ids.add(c.id);
    const arrived = external || changes.some((c) => c.kind === 'queued');

    // resources/updated first: it is what clients wait on.
    const sends: Promise<unknown>[] = [];
    for (const session of this.sessions) {
      const server = session.server.server;
      for (const uri of session.subscriptions) {
        const id = eventIdOfUri(uri);
        if (uri === PENDING_URI || (id !== null && (external || ids.has(id)))) {
          sends.push(server.sendResourceUpdated({ uri }));
        }
      }
      if (arrived) sends.push(server.sendResourceListChanged());
    }

    const lines = await this.describe(changes, external);
    for (const session of this.sessions) {
      const sessionId = session.server.server.transport?.sessionId;
      for (const line of lines) {
        sends.push(
          session.server.sendLoggingMessage(
            { level: line.level, logger: LOGGER_NAME, data: line.data },
            sessionId,
          ),
        );
      }
    }
    // A session that went away meanwhile only loses its own notifications.
    await Promise.allSettled(sends);
  }

  /**
   * One log line per queued, acked, nacked, held, dead or replayed event, naming it and its tool.
   * A burst keeps its latest MAX_LOG_LINES lines, after one line that counts the earlier ones.
   */
  private async describe(changes: readonly BufferChange[], external: boolean): Promise<LogLine[]> {
    const logged = changes.filter((c) => c.id !== undefined && LEVEL[c.kind]);
    const earlier = logged.slice(0, Math.max(0, logged.length - MAX_LOG_LINES));
    const shown = logged.slice(earlier.length);
    const lines: LogLine[] = [];
    if (earlier.length > 0) {
      const counts = new Map<string, number>();
      for (const c of earlier) {
        const tool = c.type === undefined ? undefined : this.catalog.lookup(c.type)?.tool;
        const key = `${c.kind}${c.type ? ` ${c.type}` : ''}${tool ? ` → ${tool}` : ''}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const parts = [...counts].map(([key, n]) => `${n} ${key}`);
      lines.push({
        level: 'info',
        data: {
          message: `${earlier.length} earlier changes: ${parts.join(', ')}`,
          more: earlier.length,
        },
      });
    }
    for (const change of shown) {
      const id = change.id!;
      let type = change.type;
      if (type === undefined) {
        try {
          type = (await this.buffer.get(id))?.type;
        } catch {
          type = undefined;
        }
      }
      const tool = type === undefined ? undefined : this.catalog.lookup(type)?.tool;
      const what = type === undefined ? '' : ` ${type}`;
      const arrow = tool ? ` → ${tool}` : '';
      lines.push({
        level: LEVEL[change.kind]!,
        data: {
          message: `${id}${what} ${VERB[change.kind]}${arrow}`,
          event: id,
          type: type ?? null,
          tool: tool ?? null,
          change: change.kind,
        },
      });
    }
    // Read on every round, not only on `external`: another process's commit can be absorbed into
    // this process's own writer commit (SqliteBuffer.absorbWriterCommit), and a resume is then
    // seen only as the events the loop starts claiming. One prepared read per round.
    {
      // The agent loops were paused or resumed (pause_agent, `pause` from the CLI in another
      // process, the budget, the breaker): said once per change of state.
      try {
        const pause = await this.buffer.agentPause();
        const state = pause.paused ? `paused:${pause.reason ?? 'manual'}` : 'running';
        const was = this.agentState;
        this.agentState = state;
        // A pause or resume made in this process (`agent`) is said as it is; another process's
        // shows only as `external`, and is said when the stored state differs from the last one.
        const own = changes.some((c) => c.kind === 'agent');
        if (own || (was !== undefined && was !== state)) {
          lines.push({
            level: pause.paused ? 'warning' : 'info',
            data: pause.paused
              ? {
                  // The note is whoever paused's own words (pause_agent's reason): cleaned and
                  // bounded, as the input schema bounds it, whichever door set it.
                  message: `agent loop paused (${pause.reason ?? 'manual'})${pause.note ? `: ${cleanModelText(pause.note, MAX_PAUSE_NOTE)}` : ''}`,
                  agent: 'paused',
                  reason: pause.reason,
                }
              : { message: 'agent loop resumed', agent: 'running' },
          });
        }
      } catch {
        // The store is down: the next change says more.
      }
    }
    const before = await this.baseline;
    const after = await (this.baseline = this.readStats());
    if (external && before && after) {
      const line = externalLine(before, after, this.catalog);
      if (line) lines.push(line);
    }
    return lines;
  }

  private async readStats(): Promise<QueueStats | null> {
    try {
      return await this.buffer.stats();
    } catch {
      return null;
    }
  }
}

/**
 * Another process (a second MCP server, the `events` CLI) changed the store: say what changed
 * by comparing counts, since its change feed does not cross processes with ids.
 */
function externalLine(before: QueueStats, after: QueueStats, catalog: Catalog): LogLine | null {
  const parts: string[] = [];
  const types = new Set([
    ...Object.keys(before.pendingByType),
    ...Object.keys(after.pendingByType),
  ]);
  const byType: Record<string, number> = {};
  for (const type of [...types].sort()) {
    const delta = (after.pendingByType[type] ?? 0) - (before.pendingByType[type] ?? 0);
    if (delta === 0) continue;
    byType[type] = delta;
    const tool = catalog.lookup(type)?.tool;
    parts.push(`${delta > 0 ? '+' : ''}${delta} pending ${type}${tool ? ` → ${tool}` : ''}`);
  }
  for (const status of ['acked', 'dead'] as const) {
    const delta = after.counts[status] - before.counts[status];
    if (delta !== 0) parts.push(`${delta > 0 ? '+' : ''}${delta} ${status}`);
  }
  if (parts.length === 0) return null;
  return {
    level: 'info',
    data: {
      message: `another process changed the queue: ${parts.join(', ')}`,
      change: 'external',
      pending_by_type: byType,
      pending: after.counts.pending,
    },
  };
}
