import crypto from 'node:crypto';

/**
 * Standard Webhooks signing (the profile MCP Events uses): `v1,` + base64 HMAC-SHA256 over
 * `webhook-id.webhook-timestamp.body`, keyed with the bytes after `whsec_`. The secret is the
 * client's (`delivery.secret`); the server never makes one.
 */

const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

/** The key bytes of a `whsec_` secret, or null when it is not one of 24–64 bytes. */
export function secretKey(secret: string): Buffer | null {
  const match = SECRET.exec(secret);
  if (!match) return null;
  const bytes = Buffer.from(match[1]!, 'base64');
  return bytes.length >= 24 && bytes.length <= 64 ? bytes : null;
}

export function signature(secret: string, id: string, timestamp: number, body: string): string {
  const key = secretKey(secret);
  if (!key) throw new Error('not a whsec_ secret');
  const mac = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return `v1,${mac.toString('base64')}`;
}

/** The headers of one delivery attempt: a fresh timestamp and signature every attempt. */
export function signedHeaders(
  secret: string,
  webhookId: string,
  subscriptionId: string,
  body: string,
  nowMs: number,
): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'content-type': 'application/json',
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature(secret, webhookId, timestamp, body),
    'x-mcp-subscription-id': subscriptionId,
  };
}
