import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { addressRefusal, classifyAddress, literalHost, type AddressAllowance } from './address.js';

/**
 * One POST to a subscriber's callback, hardened against SSRF (docs/MCP.md "Events"): the URL is
 * https (http only to loopback, and only with --events-allow-loopback), a host name is resolved
 * here and every address checked by the address rule before the socket connects to exactly that
 * address (no second lookup for a rebinding DNS server to answer differently), redirects are not
 * followed (a 3xx is a failure), and at most MAX_RESPONSE_BYTES of the response are read.
 */

export const MAX_RESPONSE_BYTES = 4096;
export const CALLBACK_TIMEOUT_MS = 10_000;

export type CallbackFailure =
  | 'refused_address'
  | 'connection_refused'
  | 'timeout'
  | 'tls_error'
  | 'http_3xx'
  | 'http_4xx'
  | 'http_5xx';

export type CallbackResult =
  | { ok: true; status: number; body: string }
  | { ok: false; reason: CallbackFailure; status?: number; detail: string };

export class CallbackUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallbackUrlError';
  }
}

/**
 * The checks a callback URL passes before it is stored (`events/subscribe`): scheme, no
 * credentials or fragment, and a literal address by the address rule. A host name is checked on
 * its resolved address at each delivery instead.
 */
export function checkCallbackUrl(text: string, allow: AddressAllowance): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CallbackUrlError('delivery.url is not a URL');
  }
  if (url.username || url.password || url.hash) {
    throw new CallbackUrlError('delivery.url must not carry credentials or a fragment');
  }
  const literal = literalHost(url.hostname);
  if (url.protocol === 'http:') {
    const loopback =
      url.hostname === 'localhost' || (literal !== null && classifyAddress(literal) === 'loopback');
    if (!allow.loopback || !loopback) {
      throw new CallbackUrlError(
        'delivery.url must be https (http is accepted only for a loopback callback on a server started with --events-allow-loopback)',
      );
    }
  } else if (url.protocol !== 'https:') {
    throw new CallbackUrlError('delivery.url must be https');
  }
  if (literal) {
    const refusal = addressRefusal(literal, allow);
    if (refusal) throw new CallbackUrlError(refusal);
  }
  if (url.hostname === 'localhost' && !allow.loopback) {
    throw new CallbackUrlError(addressRefusal('127.0.0.1', allow) ?? 'localhost is refused');
  }
  return url;
}

/** A DNS lookup that answers only with an address the rule allows (the one connected to). */
function checkedLookup(allow: AddressAllowance, refused: (why: string) => void): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true }, (error, addresses) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const list = addresses as dns.LookupAddress[];
      const allowed = list.find((a) => addressRefusal(a.address, allow) === null);
      if (!allowed) {
        const why = addressRefusal(list[0]?.address ?? '', allow) ?? 'no address';
        refused(why);
        callback(Object.assign(new Error(why), { code: 'EADDRREFUSED' }), '', 0);
        return;
      }
      if ((options as { all?: boolean }).all) {
        (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, [allowed]);
      } else {
        callback(null, allowed.address, allowed.family);
      }
    });
  };
}

export function postCallback(
  url: URL,
  headers: Record<string, string>,
  body: string,
  allow: AddressAllowance,
  timeoutMs = CALLBACK_TIMEOUT_MS,
): Promise<CallbackResult> {
  return new Promise((resolve) => {
    const literal = literalHost(url.hostname);
    if (literal) {
      const refusal = addressRefusal(literal, allow);
      if (refusal) {
        resolve({ ok: false, reason: 'refused_address', detail: refusal });
        return;
      }
    }
    let refusedWhy: string | null = null;
    const client = url.protocol === 'https:' ? https : http;
    let settled = false;
    const done = (result: CallbackResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: literal ? undefined : checkedLookup(allow, (why) => (refusedWhy = why)),
        // A fresh connection per delivery: a pooled socket would skip the address check.
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size >= MAX_RESPONSE_BYTES) return;
          chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - size));
          size += Math.min(chunk.length, MAX_RESPONSE_BYTES - size);
          // Enough read: stop the transfer rather than let a receiver stream to us for ever.
          if (size >= MAX_RESPONSE_BYTES) res.destroy();
        });
        const finish = () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (status >= 200 && status < 300) done({ ok: true, status, body: text });
          else {
            const reason: CallbackFailure =
              status >= 500 ? 'http_5xx' : status >= 400 ? 'http_4xx' : 'http_3xx';
            done({ ok: false, reason, status, detail: `the callback answered ${status}` });
          }
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (refusedWhy) {
        done({ ok: false, reason: 'refused_address', detail: refusedWhy });
        return;
      }
      const code = error.code ?? '';
      const reason: CallbackFailure =
        code === 'ETIMEDOUT'
          ? 'timeout'
          : /CERT|SSL|TLS|ERR_TLS/.test(code) || /certificate|ssl|tls/i.test(error.message)
            ? 'tls_error'
            : 'connection_refused';
      done({ ok: false, reason, detail: `${reason} (${code || error.message})` });
    });
    req.end(body);
  });
}
