import type { Catalog, ToolCall } from './catalog.js';
import { classifyField } from './classify.js';
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

/**
 * A copy of a JSON value with every customer-written string fenced (or redacted). Keys are copied
 * with define semantics, so a `__proto__` key stays a plain key.
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
  if (Array.isArray(value)) {
    return value.map((v, i) => fenceJson(v, nonce, redact, classify, [...path, String(i)]));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        fenceJson(v, nonce, redact, classify, [...path, k]),
      ]),
    );
  }
  return value;
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
    const mark = marks[top];
    if (mark) return mark;
    return classifyField(path);
  };
  const input = fenceJson(call.input, nonce, options.redact, classify) as Record<string, unknown>;
  return { value: { name: call.name, input }, nonce, notice: fenceNotice(nonce) };
}
