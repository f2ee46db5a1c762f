import type { Catalog, ToolCall } from './catalog.js';
import { classifyField, underCustomerContainer } from './classify.js';
import { MAX_DEPTH, TOO_DEEP } from './depth.js';
import {
  fence,
  fenceNotice,
  newNonce,
  redactedMarker,
  type RedactKind,
  type UntrustedKind,
} from './untrusted.js';

/** How model-facing output is prepared: one nonce per response, and what to redact. */
export interface ModelViewOptions {
  nonce?: string;
  redact?: readonly RedactKind[];
}

export interface ModelView<T> {
  value: T;
  nonce: string;
  /** Say this wherever the value is shown to a model. */
  notice: string;
}

function protect(
  value: string,
  kind: UntrustedKind,
  nonce: string,
  redact: readonly RedactKind[],
): string {
  if (kind !== 'text' && redact.includes(kind)) return redactedMarker(kind);
  return fence(value, nonce);
}

/** A key an integration could have chosen as an identifier: shown as it is, even under metadata. */
const PLAIN_KEY = /^[A-Za-z0-9_.:-]{1,40}$/;

/**
 * A copy of a JSON value with every customer-written string fenced (or redacted). Keys are copied
 * with define semantics, so a `__proto__` key stays a plain key; a key under a container a customer
 * fills (metadata, custom fields, …) is fenced too unless it is a plain identifier. Values nested
 * deeper than MAX_DEPTH are replaced by TOO_DEEP, so a hostile event cannot overflow the stack.
 */
export function fenceJson(
  value: unknown,
  nonce: string,
  redact: readonly RedactKind[] = [],
  classify: (path: readonly string[]) => UntrustedKind | null = classifyField,
  path: string[] = [],
): unknown {
  if (typeof value === 'string') {
    const kind = classify(path);
    return kind ? protect(value, kind, nonce, redact) : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (path.length >= MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) {
    return value.map((v, i) => fenceJson(v, nonce, redact, classify, [...path, String(i)]));
  }
  const customerKeys = underCustomerContainer(path);
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      customerKeys && !PLAIN_KEY.test(k) ? fence(k, nonce) : k,
      fenceJson(v, nonce, redact, classify, [...path, k]),
    ]),
  );
}

/** A whole event as received, fenced for a model. */
export function eventForModel(event: unknown, options: ModelViewOptions = {}): ModelView<unknown> {
  const nonce = options.nonce ?? newNonce();
  return { value: fenceJson(event, nonce, options.redact), nonce, notice: fenceNotice(nonce) };
}

/**
 * A tool call for a model: the fields its definition marks customer-written are fenced or
 * redacted; ids, amounts, enums and dates are left readable.
 */
export function toolCallForModel(
  catalog: Catalog,
  type: string,
  call: ToolCall,
  options: ModelViewOptions = {},
): ModelView<ToolCall> {
  const nonce = options.nonce ?? newNonce();
  const marks = catalog.lookup(type)?.untrusted ?? {};
  const classify = (path: readonly string[]): UntrustedKind | null => {
    const top = path[0];
    if (top === undefined) return null;
    // Own properties only: a fact key is never looked up through Object.prototype.
    const mark = Object.hasOwn(marks, top) ? marks[top] : undefined;
    if (mark) return mark;
    return classifyField(path);
  };
  const input = fenceJson(call.input, nonce, options.redact, classify) as Record<string, unknown>;
  return { value: { name: call.name, input }, nonce, notice: fenceNotice(nonce) };
}
