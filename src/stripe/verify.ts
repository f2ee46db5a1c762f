import Stripe from 'stripe';
import { WebhookRejectedError } from '../errors.js';

/** The verified snapshot event: only the fields the ingress relies on are typed. */
export interface VerifiedEvent {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  data: { object: Record<string, unknown> };
  [key: string]: unknown;
}

export interface VerifyOptions {
  secrets: readonly string[];
  /** Seconds. Always passed to stripe-node explicitly: since stripe@23 a 0 there disables the check. */
  toleranceSeconds: number;
  /** Injectable clock (ms since epoch). */
  now?: () => number;
}

export type RejectionCode =
  | 'missing_signature'
  | 'malformed_signature'
  | 'invalid_signature'
  | 'stale_timestamp'
  | 'invalid_json'
  | 'invalid_event'
  | 'thin_event_unsupported';

const STALE = 'Timestamp outside the tolerance zone';

function reject(code: RejectionCode, message: string): WebhookRejectedError {
  return new WebhookRejectedError(code, message);
}

/**
 * Verifies a raw webhook body against every configured secret (a match on any is success: secret
 * rotation and several endpoints), then parses it. Throws WebhookRejectedError with a stable code.
 */
export function verifyWebhook(
  rawBody: Buffer | string,
  signatureHeader: string | string[] | undefined,
  options: VerifyOptions,
): VerifiedEvent {
  if (signatureHeader === undefined || signatureHeader === '') {
    throw reject('missing_signature', 'the Stripe-Signature header is missing');
  }
  if (Array.isArray(signatureHeader)) {
    throw reject(
      'malformed_signature',
      'the request carries more than one Stripe-Signature header',
    );
  }
  if (rawBody.length === 0) throw reject('invalid_json', 'the request body is empty');
  if (!/(^|,)\s*t=\d+/.test(signatureHeader) || !/(^|,)\s*v1=[0-9a-f]+/.test(signatureHeader)) {
    throw reject(
      'malformed_signature',
      'the Stripe-Signature header has no t= timestamp or no v1= signature',
    );
  }
  const receivedAt = (options.now ?? Date.now)();
  let stale = false;
  for (const secret of options.secrets) {
    let event: unknown;
    try {
      event = Stripe.webhooks.constructEvent(
        rawBody,
        signatureHeader,
        secret,
        options.toleranceSeconds,
        undefined,
        receivedAt,
      );
    } catch (error) {
      if (error instanceof SyntaxError) {
        throw reject('invalid_json', 'the signature is valid but the body is not JSON');
      }
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
        if (error.message.startsWith(STALE)) stale = true;
        continue;
      }
      if (error instanceof Error && /thin event/i.test(error.message)) {
        throw reject(
          'thin_event_unsupported',
          'this is a thin event (v2 event destination); point a snapshot-event endpoint here',
        );
      }
      throw reject('invalid_signature', 'the signature could not be checked');
    }
    return checkShape(event);
  }
  if (stale) {
    throw reject(
      'stale_timestamp',
      `the signature matches but its timestamp is more than ${options.toleranceSeconds}s old (a replay, or a clock that is off)`,
    );
  }
  throw reject(
    'invalid_signature',
    'no v1 signature matches a configured secret (check STRIPE_WEBHOOK_SECRET, and that the body reaches us unmodified)',
  );
}

function checkShape(value: unknown): VerifiedEvent {
  const e = value as Partial<VerifiedEvent> | null;
  if (
    !e ||
    typeof e !== 'object' ||
    typeof e.id !== 'string' ||
    !e.id.startsWith('evt_') ||
    typeof e.type !== 'string' ||
    !e.data ||
    typeof e.data !== 'object' ||
    typeof e.data.object !== 'object' ||
    e.data.object === null
  ) {
    throw reject(
      'invalid_event',
      'the body is JSON but not a Stripe event (id evt_…, type, data.object)',
    );
  }
  return {
    ...e,
    created: typeof e.created === 'number' ? e.created : 0,
    livemode: e.livemode === true,
  } as VerifiedEvent;
}
