import { SIGNATURE_HEADER, signBody } from '../../dispatch/dispatch.js';
import type { Notice } from './notice.js';
import { slackMessage } from './slack.js';

/**
 * Where notices go: a Slack incoming webhook, and a generic webhook signed exactly like the http
 * dispatch sink (`Stripe-Events-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`,
 * dispatch/dispatch.ts), so a receiver verifies both the same way. Neither follows a redirect (a
 * 307 would re-post the message, and the signature, wherever Location says).
 */
export interface NotifyTarget {
  readonly name: 'slack' | 'webhook';
  /** Sends once; throws a DeliveryError (retryable or not) when the endpoint does not take it. */
  send(notice: Notice, signal: AbortSignal): Promise<void>;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

function retryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      redirect: 'manual',
      signal,
    });
  } catch (error) {
    throw new DeliveryError((error as Error).message, true);
  }
  await res.body?.cancel();
  if (res.ok) return;
  throw new DeliveryError(`HTTP ${res.status}`, retryableStatus(res.status));
}

/** The URL's origin only: a Slack webhook's path is its secret, never logged. */
export function shownOrigin(url: string): string {
  return new URL(url).origin;
}

export function slackTarget(webhookUrl: string): NotifyTarget {
  return {
    name: 'slack',
    send: (notice, signal) => post(webhookUrl, JSON.stringify(slackMessage(notice)), {}, signal),
  };
}

export function webhookTarget(url: string, secret: string): NotifyTarget {
  return {
    name: 'webhook',
    send(notice, signal) {
      const body = JSON.stringify(notice);
      return post(url, body, { [SIGNATURE_HEADER]: signBody(body, secret) }, signal);
    },
  };
}
