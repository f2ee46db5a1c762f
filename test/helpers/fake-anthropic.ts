import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Anthropic Messages API served over real HTTP, for the official SDK to talk to
 * (`baseURL`). Each request is recorded; `respond` scripts the answer.
 */
export interface FakeRequest {
  n: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface FakeAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (the test kills the client). */
  hang?: boolean;
  /** Close the connection without an answer (the client sees a connection error). */
  destroy?: boolean;
  /** The usage to report for this answer, instead of the fake's own count. */
  usage?: { input_tokens: number; output_tokens: number };
}

export type Responder = (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>;

export interface FakeAnthropic {
  url: string;
  requests: FakeRequest[];
  respond: Responder;
  close(): Promise<void>;
}

let counter = 0;

export function toolUse(
  name: string,
  input: Record<string, unknown>,
  model = 'claude-test',
): FakeAnswer {
  return message([{ type: 'tool_use', id: `toolu_${++counter}`, name, input }], 'tool_use', model);
}

export function message(content: unknown[], stopReason: string, model = 'claude-test'): FakeAnswer {
  return {
    body: {
      id: `msg_${++counter}`,
      type: 'message',
      role: 'assistant',
      model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    },
  };
}

export function apiError(
  status: number,
  type: string,
  headers: Record<string, string> = {},
): FakeAnswer {
  return { status, headers, body: { type: 'error', error: { type, message: `fake ${type}` } } };
}

/** The catalog tool offered in a request (the first tool), with its first allowed action. */
export function firstDecision(req: FakeRequest): { tool: string; action: string } {
  const tool = req.body.tools[0];
  return { tool: tool.name, action: tool.input_schema.properties.action.enum[0] };
}

/** Decides the first action of whatever catalog tool the request offers. */
export const decideFirstAction: Responder = (req) => {
  const { tool, action } = firstDecision(req);
  return toolUse(tool, { action, rationale: 'The facts support it.' });
};

/** The user message text of a request (the rendered event). */
export function userText(req: FakeRequest): string {
  const first = req.body.messages[0];
  return typeof first.content === 'string'
    ? first.content
    : first.content.map((b: { text?: string }) => b.text ?? '').join('');
}

export async function startFakeAnthropic(
  respond: Responder = decideFirstAction,
): Promise<FakeAnthropic> {
  const requests: FakeRequest[] = [];
  const fake: FakeAnthropic = { url: '', requests, respond, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const request: FakeRequest = {
          n: requests.length + 1,
          path: req.url ?? '',
          headers: req.headers,
          body: raw ? JSON.parse(raw) : null,
        };
        requests.push(request);
        if (!(req.url ?? '').startsWith('/v1/messages')) {
          res.writeHead(404).end();
          return;
        }
        const answer = await fake.respond(request);
        if (answer.hang) return;
        if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
        if (answer.destroy) {
          req.socket.destroy();
          return;
        }
        const body = answer.body as { usage?: { input_tokens: number; output_tokens: number } };
        // Usage as the answer chose it, or as the fake computes it: about four characters a token.
        if (body?.usage) {
          body.usage = answer.usage ?? {
            input_tokens: Math.ceil(raw.length / 4),
            output_tokens: Math.ceil(JSON.stringify(body).length / 4),
          };
        }
        res.writeHead(answer.status ?? 200, {
          'content-type': 'application/json',
          'request-id': `req_${request.n}`,
          ...answer.headers,
        });
        res.end(JSON.stringify(answer.body ?? {}));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}
