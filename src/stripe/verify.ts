import crypto from 'node:crypto';
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

function reject(code: RejectionCode, message: string): WebhookRejectedError {
  return new WebhookRejectedError(code, message);
}

/** Strict: a body that is not UTF-8 is refused, never "repaired" into different text. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `t=` and every `v1=` of a Stripe-Signature header, read as stripe-node reads them. */
function parseHeader(header: string): { timestamp: number; signatures: string[] } {
  let timestamp = -1;
  const signatures: string[] = [];
  for (const item of header.split(',')) {
    const [key, value] = item.split('=');
    if (key === 't') timestamp = parseInt(value ?? '', 10);
    else if (key === 'v1' && value !== undefined) signatures.push(value);
  }
  return { timestamp, signatures };
}

/**
 * HMAC-SHA256 of `<t>.<body bytes>`, compared in constant time with each v1 signature. Over the
 * bytes received: stripe-node decodes a Buffer to text first (invalid UTF-8 turns into U+FFFD),
 * so a body would be verified as bytes other than the ones stored.
 */
function signatureMatches(
  body: Buffer,
  timestamp: number,
  signatures: readonly Buffer[],
  secret: string,
): boolean {
  const expected = Buffer.from(
    crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex'),
  );
  let found = false;
  for (const signature of signatures) {
    if (signature.length === expected.length && crypto.timingSafeEqual(signature, expected)) {
      found = true;
    }
  }
  return found;
}

/** What verifyWebhook returns: the event, and the body as text (decoded once, kept as stored). */
export interface Verified {
  event: VerifiedEvent;
  text: string;
}

/**
 * Verifies a raw webhook body against every configured secret (a match on any is success: secret
 * rotation and several endpoints), then decodes and parses it. Throws WebhookRejectedError with a
 * stable code.
 */
export function verifyWebhook(
  rawBody: Buffer | string,
  signatureHeader: string | string[] | undefined,
  options: VerifyOptions,
): Verified {
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
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
  const { timestamp, signatures } = parseHeader(signatureHeader);
  if (timestamp === -1 || Number.isNaN(timestamp) || signatures.length === 0) {
    throw reject(
      'malformed_signature',
      'the Stripe-Signature header has no t= timestamp or no v1= signature',
    );
  }
  const given = signatures.map((s) => Buffer.from(s));
  if (!options.secrets.some((secret) => signatureMatches(body, timestamp, given, secret))) {
    throw reject(
      'invalid_signature',
      'no v1 signature matches a configured secret (check STRIPE_WEBHOOK_SECRET, and that the body reaches us unmodified)',
    );
  }
  const receivedAt = (options.now ?? Date.now)();
  if (Math.floor(receivedAt / 1000) - timestamp > options.toleranceSeconds) {
    throw reject(
      'stale_timestamp',
      `the signature matches but its timestamp is more than ${options.toleranceSeconds}s old (a replay, or a clock that is off)`,
    );
  }
  let text: string;
  try {
    text = typeof rawBody === 'string' ? rawBody : utf8.decode(body);
  } catch {
    throw reject('invalid_json', 'the signature is valid but the body is not UTF-8 text');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw reject('invalid_json', 'the signature is valid but the body is not JSON');
  }
  if (
    parsed !== null &&
    typeof parsed === 'object' &&
    (parsed as { object?: unknown }).object === 'v2.core.event'
  ) {
    throw reject(
      'thin_event_unsupported',
      'this is a thin event (v2 event destination); point a snapshot-event endpoint here',
    );
  }
  return { event: checkShape(parsed), text };
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
    livemode: e.livemode === true,
  } as VerifiedEvent;
}
