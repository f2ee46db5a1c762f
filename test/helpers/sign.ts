import crypto from 'node:crypto';
import Stripe from 'stripe';

/** A Stripe-Signature header made by stripe-node, as Stripe would send it. */
export function signatureHeader(payload: string, secret: string, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

/** The header Stripe sends during a secret roll: one v1 per active secret. */
export function rotationHeader(payload: string, secrets: string[], timestamp: number): string {
  const sigs = secrets.map(
    (s) => 'v1=' + crypto.createHmac('sha256', s).update(`${timestamp}.${payload}`).digest('hex'),
  );
  return [`t=${timestamp}`, ...sigs].join(',');
}

export function newSecret(): string {
  return `whsec_${crypto.randomBytes(18).toString('base64url')}`;
}

export async function postWebhook(
  url: string,
  payload: string,
  headers: Record<string, string>,
  path = '/stripe/webhook',
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: payload,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, headers: res.headers };
}
