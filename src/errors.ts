/**
 * A small error hierarchy with stable codes. The code is what callers branch on and what HTTP and
 * MCP answers carry; the message is for people and must never contain a secret.
 */
export class AppError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad configuration: the CLI maps it to exit code 2. `setting` names what the user must change. */
export class ConfigError extends AppError {
  readonly setting: string;
  constructor(setting: string, message: string, options?: { cause?: unknown }) {
    super('config_invalid', `${setting}: ${message}`, options);
    this.setting = setting;
  }
}

/** A webhook request we refuse (HTTP 400): bad signature, stale timestamp, invalid JSON. */
export class WebhookRejectedError extends AppError {
  readonly status = 400;
}

/** The store cannot take or give events right now (HTTP 503, MCP tool error). */
export class StoreUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
  }
}

/** The pending backlog reached its configured limit (HTTP 503 so Stripe retries later). */
export class BufferFullError extends AppError {
  constructor(readonly limit: number) {
    super('buffer_full', `the buffer holds ${limit} pending events, its limit (--max-pending)`);
  }
}

export class EventNotFoundError extends AppError {
  constructor(readonly id: string) {
    super('event_not_found', `no event with id ${JSON.stringify(id)} is stored`);
  }
}

export class InvalidCursorError extends AppError {
  constructor() {
    super(
      'invalid_cursor',
      'the cursor is not one this server issued; start again without a cursor',
    );
  }
}

/** A state change the event's current state does not allow (e.g. nack of an acked event). */
export class InvalidTransitionError extends AppError {
  constructor(id: string, from: string, action: string) {
    super('invalid_transition', `event ${id} is ${from}; it cannot be ${action}`);
  }
}

/**
 * A worker's change refused because its claim token no longer holds the event: the lease expired,
 * another worker claimed it, or a person acked it. Nothing was changed; the worker must abandon
 * the event (its late outcome is neither dispatched nor recorded as done).
 */
export class LeaseLostError extends InvalidTransitionError {
  override readonly code = 'lease_lost';
  constructor(id: string, now: string, op: string) {
    super(id, now, `changed (${op}) by a worker that no longer holds its claim`);
    this.message = `event ${id} is ${now}: this worker's claim on it is lost, so it cannot ${op} it`;
  }
}

/**
 * A person's replay (or nack) of an event a worker is handling or that waits for approval: it
 * would have the event handled twice. The same words from every door (MCP, CLI, console).
 */
export class BeingHandledError extends InvalidTransitionError {
  // Typed string, not the literal: HeldForApprovalError refines it with its own code.
  override readonly code: string = 'being_handled';
  constructor(id: string, now: string, action: string) {
    super(id, now, action);
    const what =
      now === 'awaiting_approval'
        ? 'it waits for approval: approve or reject it, or ack it to mark it done'
        : `it is being handled now (${now}): wait until it is acked, nacked or its lease expires, or ack it to mark it done`;
    this.message = `event ${id} cannot be ${action}: ${what}`;
  }
}

/**
 * A person's nack of an event whose decided call waits for approval. A nack would throw the
 * decision away and have the model decide again (tokens spent, perhaps another answer) instead of
 * saying no to it: rejecting does that, and records why. A BeingHandledError, so every door that
 * shows those refusals shows this one in the same words.
 */
export class HeldForApprovalError extends BeingHandledError {
  override readonly code: string = 'held_for_approval';
  constructor(id: string) {
    super(id, 'awaiting_approval', 'nacked');
    this.message = `event ${id} cannot be nacked: its decided call awaits approval; to turn it down use reject_action (MCP), \`events reject ${id} --reason …\` (CLI) or the console's Reject — a nack would discard the decision and have the model decide again`;
  }
}

/** approve/reject of a call that no longer waits (someone approved or rejected it first). */
export class NotAwaitingApprovalError extends InvalidTransitionError {
  override readonly code = 'not_awaiting_approval';
  constructor(id: string, now: string) {
    super(id, now, 'approved or rejected');
    this.message = `event ${id} is ${now}, not awaiting approval (someone else approved or rejected it, or it was acked): nothing was changed`;
  }
}
