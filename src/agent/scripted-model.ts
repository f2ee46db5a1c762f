import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOP_TOOL_NAMES } from '../catalog/tool.js';

/**
 * The decision model of `demo`: a Messages API served in-process on loopback, answering from a
 * script instead of a model. The agent loop talks to it through the real Anthropic SDK client (its
 * `baseURL`), so the demo runs the very code paths of `agent` — the tool runner, the zod checks of
 * each decision, the approval rule, dispatch and every store write — and nothing in the loop knows
 * it is a demo. Nothing is sent to Anthropic, and no key is needed.
 */

/** The model name the loop records in every decision's history entry (and the console shows). */
export const DEMO_MODEL = 'demo (scripted)';

/** Said wherever the demo model shows: start-up, the console's banner, the docs. */
export const DEMO_MODEL_NOTE = 'demo model: decisions are scripted, nothing is sent to Anthropic';

const [NO_ACTION_NEEDED, ASK_A_PERSON] = LOOP_TOOL_NAMES;

/** One scripted answer: a decision with the event's own tool, no action, or a person to ask. */
export type ScriptedDecision =
  | { decide: { action: string; rationale: string } & Record<string, string> }
  | { noAction: string }
  | { askAPerson: string };

/**
 * What the script answers, keyed by the catalog tool the request offers: a realistic decision for
 * each of the default catalog's tools, written for the story the test events tell (one customer
 * of a small shop selling handmade goods and a monthly Pro plan, src/stripe/fixtures.ts). Amounts
 * are not in the script: the approval rule decides what waits for a person, as it does live.
 */
export const DEMO_SCRIPT: Readonly<Record<string, ScriptedDecision>> = Object.freeze({
  handle_dispute: {
    decide: {
      action: 'submit_evidence',
      rationale:
        'Fraud dispute (reason code 10.4) on a shipped order: the customer, email and product on file match, so it is worth contesting before the evidence deadline.',
      evidence_summary:
        'USPS Priority Mail tracking showing delivery to the billing address; the order confirmation and receipt emails; the customer’s earlier undisputed orders on the same card.',
    },
  },
  retry_failed_payment: {
    decide: {
      action: 'contact_customer',
      rationale:
        'Second failed attempt on a subscription renewal; Stripe retries once more, and an updated card is likelier to succeed than another retry on the same one.',
      customer_message:
        'Your Pro plan renewal did not go through. You can update your card on the invoice page; nothing else changes in the meantime.',
    },
  },
  churn_outreach: {
    decide: {
      action: 'send_winback_offer',
      rationale:
        'Cancelled as too expensive, with a positive comment about the product: a discount addresses the stated reason.',
      offer: 'Three months of Pro at $19 a month',
      customer_message:
        'Sorry to see you go. If price was the reason, Pro is yours at $19 a month for the next three months.',
    },
  },
  log_refund: {
    decide: {
      action: 'record_only',
      rationale:
        'A full refund the customer asked for, already succeeded, on an order that was delivered: nothing to revoke or change in fulfilment.',
    },
  },
  review_fraud_warning: {
    askAPerson:
      'The issuer reports this charge as made with a stolen card, and the charge is already disputed: a refund would not stop the dispute. Someone should check whether the order shipped and decide between refunding and contesting.',
  },
  confirm_payment: {
    decide: {
      action: 'send_confirmation',
      rationale: 'The payment succeeded in full; the customer gets the usual confirmation.',
      customer_message: 'Thank you, your payment was received. Your order is being prepared.',
    },
  },
  fulfill_order: {
    decide: {
      action: 'fulfil_now',
      rationale: 'The session is complete and paid: the order can ship.',
    },
  },
  trial_ending_outreach: {
    decide: {
      action: 'send_reminder',
      rationale: 'The trial ends in three days; a reminder lets the customer add a payment method.',
      customer_message: 'Your Pro trial ends in three days. Add a card to keep your plan.',
    },
  },
  review_subscription_change: {
    noAction: 'A routine change to the subscription: nothing for anyone to do.',
  },
  record_dispute_outcome: {
    decide: {
      action: 'record_only',
      rationale: 'The dispute is closed; its outcome is recorded for the books.',
    },
  },
  request_payment_action: {
    decide: {
      action: 'send_payment_link',
      rationale: 'The bank asks the customer to authenticate; the invoice page lets them do it.',
      customer_message: 'Your bank needs you to confirm this payment. Please use the link.',
    },
  },
  handle_failed_payment: {
    decide: {
      action: 'request_new_payment_method',
      rationale: 'The card was declined; another payment method is the way forward.',
      customer_message: 'Your payment was declined. Please try another card.',
    },
  },
});

/** Largest request body the scripted model reads; a request past it is refused (413). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface ScriptedModel {
  /** The base URL for the Anthropic SDK (`http://127.0.0.1:<port>`). */
  url: string;
  /** A random key made for this run: requests without it are refused (401). */
  apiKey: string;
  /** Decisions answered so far. */
  answered(): number;
  close(): Promise<void>;
}

interface ToolOffered {
  name?: unknown;
  input_schema?: { properties?: { action?: { enum?: unknown } } };
}

interface MessagesRequest {
  model?: unknown;
  tools?: ToolOffered[];
  messages?: { role?: unknown; content?: unknown }[];
}

/** The answer to one request: which tool to call, with what input. */
export function scriptedAnswer(
  request: MessagesRequest,
  script: Readonly<Record<string, ScriptedDecision>> = DEMO_SCRIPT,
): { name: string; input: Record<string, unknown> } {
  const loopTools: readonly string[] = LOOP_TOOL_NAMES;
  const offered = (request.tools ?? []).find(
    (t) => typeof t.name === 'string' && !loopTools.includes(t.name),
  );
  const tool = typeof offered?.name === 'string' ? offered.name : null;
  const ask = (reason: string) => ({ name: ASK_A_PERSON, input: { reason } });
  // A refused decision comes back as a tool error: the script does not argue, it asks a person.
  const refusal = lastToolError(request);
  if (refusal !== null) {
    return ask(`The scripted decision was refused (${refusal.slice(0, 300)}); a person decides.`);
  }
  const entry = tool === null ? undefined : Object.hasOwn(script, tool) ? script[tool] : undefined;
  if (tool === null || entry === undefined) {
    return ask(`The demo script has no decision for ${tool ?? 'this event'}; a person decides.`);
  }
  if ('askAPerson' in entry) return ask(entry.askAPerson);
  if ('noAction' in entry) return { name: NO_ACTION_NEEDED, input: { rationale: entry.noAction } };
  // A catalog changed by --config may not offer the scripted action: a person decides then.
  const actions = offered?.input_schema?.properties?.action?.enum;
  if (Array.isArray(actions) && !actions.includes(entry.decide.action)) {
    return ask(`The demo script's action for ${tool} is not offered here; a person decides.`);
  }
  return { name: tool, input: { ...entry.decide } };
}

/** The text of the last tool error the request carries back to the model, or null. */
function lastToolError(request: MessagesRequest): string | null {
  const last = request.messages?.at(-1);
  if (last?.role !== 'user' || !Array.isArray(last.content)) return null;
  for (const block of last.content as { type?: unknown; is_error?: unknown; content?: unknown }[]) {
    if (block?.type === 'tool_result' && block.is_error === true) {
      return typeof block.content === 'string' ? block.content : JSON.stringify(block.content);
    }
  }
  return null;
}

function apiError(res: http.ServerResponse, status: number, type: string, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

/** Starts the scripted Messages API on 127.0.0.1, on a free port. */
export async function startScriptedModel(
  script: Readonly<Record<string, ScriptedDecision>> = DEMO_SCRIPT,
): Promise<ScriptedModel> {
  const apiKey = `demo-${crypto.randomBytes(16).toString('hex')}`;
  let answered = 0;
  let counter = 0;
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || !(req.url ?? '').startsWith('/v1/messages')) {
      apiError(res, 404, 'not_found_error', 'the demo model answers POST /v1/messages only');
      req.resume();
      return;
    }
    // The SDK sends its key as a bearer token (older versions: x-api-key); either will do.
    if (req.headers.authorization !== `Bearer ${apiKey}` && req.headers['x-api-key'] !== apiKey) {
      apiError(res, 401, 'authentication_error', 'not the key of this demo run');
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        refused = true;
        apiError(res, 413, 'request_too_large', `over ${MAX_REQUEST_BYTES} bytes`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      let body: MessagesRequest;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as MessagesRequest;
      } catch {
        apiError(res, 400, 'invalid_request_error', 'the body is not JSON');
        return;
      }
      const { name, input } = scriptedAnswer(body, script);
      answered += 1;
      counter += 1;
      res.writeHead(200, {
        'content-type': 'application/json',
        'request-id': `req_demo_${counter}`,
      });
      res.end(
        JSON.stringify({
          id: `msg_demo_${counter}`,
          type: 'message',
          role: 'assistant',
          model: typeof body.model === 'string' ? body.model : DEMO_MODEL,
          content: [{ type: 'tool_use', id: `toolu_demo_${counter}`, name, input }],
          stop_reason: 'tool_use',
          stop_sequence: null,
          // No model ran: no tokens were read or written.
          usage: { input_tokens: 0, output_tokens: 0 },
        }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    answered: () => answered,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
