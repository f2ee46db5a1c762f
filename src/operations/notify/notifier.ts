import client from 'prom-client';
import type { BufferChange, EventBuffer } from '../../buffer/buffer.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { ConfigFile } from '../../config/file.js';
import type { Logger } from '../../logger.js';
import {
  approvalDeadline,
  type AppliedExpiry,
  type ExpirySettings,
  type ExpiringSoon,
} from '../expiry.js';
import { buildEventNotice, pauseNotice, type Notice } from './notice.js';
import { DeliveryQueue, type DeliveryQueueOptions } from './queue.js';
import { slackTarget, webhookTarget, type NotifyTarget } from './targets.js';

/**
 * Tells people where they are (issue #20.7). Each message is sent once across instances:
 *
 * - a call starts waiting (`held`) or an event goes `dead`: by the process that made the change
 *   — its own changes from buffer.watch; changes another instance made (marked `remote`, or
 *   SQLite's id-less `external`) are that instance's to announce;
 * - an approval expires soon, or expired: from the expiry sweep (operations/expiry.ts), by the
 *   instance whose `ledger.once` took the warning, or whose guarded reject/approve applied it;
 * - the agent paused: by whichever instance first takes `ledger.once` for that pause (a pause
 *   can be set by a CLI process that notifies nobody, so every instance looks, one sends); a
 *   loop's own circuit breaker, which pauses that process only, by that process.
 */
export interface Notifier {
  /** For the expiry sweep. */
  expired(applied: AppliedExpiry): void;
  expiringSoon(soon: ExpiringSoon): void;
  /** This process's agent loop opened its circuit breaker (a per-process pause). */
  breakerOpened(stop: { note: string | null; until: number | null }): void;
  readonly queue: DeliveryQueue;
  close(): void;
}

export interface NotifierOptions {
  buffer: EventBuffer;
  catalog: Catalog;
  notify: NonNullable<ConfigFile['notify']>;
  /** Where the console is reached from outside (`--public-url`), no trailing slash. */
  publicUrl: string;
  settings: ExpirySettings;
  logger: Logger;
  registry?: client.Registry;
  /** Delivery bounds, for tests. */
  delivery?: Partial<Omit<DeliveryQueueOptions, 'targets' | 'logger' | 'onResult'>>;
}

/** How long a pause's once-key is kept: a pause notice is never repeated within a week. */
const PAUSE_ONCE_MS = 7 * 86_400_000;

export function targetsOf(notify: NonNullable<ConfigFile['notify']>): NotifyTarget[] {
  const targets: NotifyTarget[] = [];
  if (notify.slack) targets.push(slackTarget(notify.slack.webhook_url));
  if (notify.webhook) targets.push(webhookTarget(notify.webhook.url, notify.webhook.secret));
  return targets;
}

/** The notifier, or null when the config names no target. */
export function startNotifier(options: NotifierOptions): Notifier | null {
  const targets = targetsOf(options.notify);
  if (targets.length === 0) return null;
  const { buffer, catalog, publicUrl, settings, logger } = options;
  const counter = options.registry
    ? new client.Counter({
        name: 'stripe_events_notifications_total',
        help: 'Notifications by target and result (sent, retried, failed after retries, dropped: queue full)',
        labelNames: ['target', 'result'],
        registers: [options.registry],
      })
    : null;
  const queue = new DeliveryQueue({
    ...options.delivery,
    targets,
    logger,
    onResult: (target, result) => counter?.inc({ target, result }),
  });
  const push = (notice: Notice | null) => {
    if (notice) queue.push(notice);
  };
  const fail = (error: unknown) => logger.warn('could not build a notification', { error });

  const onHeldOrDead = async (change: BufferChange) => {
    const event = await buffer.get(change.id!);
    if (!event) return;
    if (change.kind === 'held' && event.status === 'awaiting_approval') {
      const deadline = approvalDeadline(event, event.updatedAt, settings);
      push(await buildEventNotice(buffer, catalog, publicUrl, 'waiting', event, { deadline }));
    } else if (change.kind === 'dead' && event.status === 'dead') {
      push(await buildEventNotice(buffer, catalog, publicUrl, 'dead', event));
    }
  };

  // Pauses: read after any change that may be one (ours, another instance's, or an unknown one),
  // at most one read in flight.
  let pauseCheck: Promise<void> | null = null;
  let pauseAgain = false;
  const checkPause = () => {
    if (pauseCheck) {
      pauseAgain = true;
      return;
    }
    pauseCheck = (async () => {
      do {
        pauseAgain = false;
        const pause = await buffer.agentPause();
        if (!pause.paused) continue;
        const key = `notify:paused:${pause.reason ?? ''}:${pause.since ?? ''}`;
        if (await buffer.ledger.once(key, PAUSE_ONCE_MS)) push(pauseNotice(pause, publicUrl));
      } while (pauseAgain);
    })()
      .catch(fail)
      .finally(() => (pauseCheck = null));
  };

  const unwatch = buffer.watch((change) => {
    if (change.kind === 'agent' || change.kind === 'external') checkPause();
    if (change.remote || !change.id) return;
    if (change.kind === 'held' || change.kind === 'dead') onHeldOrDead(change).catch(fail);
  });
  checkPause();

  return {
    queue,
    expired(applied) {
      void (async () => {
        const stored = await buffer.get(applied.id);
        if (!stored) return;
        push(
          await buildEventNotice(buffer, catalog, publicUrl, 'expired', stored, {
            reason: applied.note,
            deadline: applied.deadline,
          }),
        );
      })().catch(fail);
    },
    expiringSoon({ event, deadline }) {
      void buildEventNotice(buffer, catalog, publicUrl, 'expiring', event, { deadline })
        .then(push)
        .catch(fail);
    },
    breakerOpened(stop) {
      push(
        pauseNotice(
          {
            paused: true,
            reason: 'breaker',
            by: null,
            note: stop.note,
            since: Date.now(),
            until: stop.until,
          },
          publicUrl,
        ),
      );
    },
    close() {
      unwatch();
      queue.close();
    },
  };
}
