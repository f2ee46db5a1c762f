import express, { type NextFunction, type Request, type Response } from 'express';
import {
  AppError,
  EventNotFoundError,
  InvalidTransitionError,
  StoreUnavailableError,
} from '../errors.js';
import { isEventOutcome, isEventStatus, type EventStatus } from '../buffer/buffer.js';
import type { Logger } from '../logger.js';
import { createRequestGuard, originOf, requestSource } from '../http-guard.js';
import { createRefusalLog } from '../refusal-log.js';
import { CONSOLE_SCRIPT, CONSOLE_STYLES } from './assets.js';
import type { ApprovalResult } from '../operations/approvals.js';
import type { ConsoleBackend, EventView } from './backend.js';
import { InvalidDecisionError } from '../operations/person-decision.js';
import { LiveFeed } from './live.js';
import { searchTerm } from './search.js';
import {
  eventBody,
  messagePage,
  overviewBody,
  page,
  signInPage,
  type DecideFormState,
  withoutActions,
} from './render.js';
import { cookieValue, SESSION_COOKIE, Sessions } from './sessions.js';
import {
  ADMIN,
  canChange,
  createActorResolver,
  historyName,
  tokenHash,
  viewOnlyRefusal,
  type Actor,
  type ActorResolver,
} from '../operations/people.js';
import { clientKey, SignInLimiter, type SignInLimitOptions } from './sign-in-limit.js';

export const CONSOLE_PATH = '/console';
const PAGE_SIZE = 50;
const BODY_LIMIT = '16kb';
const MAX_TEXT = 1000;
/** A decision's text field, as the model's are bounded (catalog/model-text.ts). */
const MAX_DECISION_TEXT = 2000;

export interface ConsoleOptions {
  backend: ConsoleBackend;
  logger: Logger;
  /** The bind, MCP_AUTH_TOKEN and the allow-lists: the same rules as `/mcp`. */
  host: string;
  authToken: string | null;
  allowedHosts?: readonly string[];
  allowedOrigins?: readonly string[];
  maxLiveClients?: number;
  /** Bounds (and the clock) of the sign-in rate limit; SIGN_IN_LIMIT by default. */
  signInLimit?: SignInLimitOptions;
  /**
   * Who a token names (operations/people.ts): MCP_AUTH_TOKEN or a person of the store. By default
   * the administrator's token only.
   */
  actors?: ActorResolver;
  /** A line shown over the queue and event pages (`demo`: the decisions are scripted). */
  banner?: string;
}

export interface ConsoleHandler {
  router: express.Router;
  /** Ends the live streams (so the server can close). */
  close(): void;
}

/**
 * Strict: scripts, styles, images and connections from this origin only, no inline script, no
 * framing, forms post here only. The console loads nothing from anywhere else.
 */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#635bff"/><path d="M4 8h8M8 4v8" stroke="#fff" stroke-width="2"/></svg>';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * The operator console at `/console`: server-rendered pages (render.ts), one small script and
 * stylesheet (assets.ts), live updates over server-sent events (live.ts), and the actions —
 * Approve, Reject, Replay, Ack — through the console's backend (backend.ts), so they meet the same
 * rules and refusals as MCP and the CLI.
 *
 * Access: the Host must name this server, as at `/mcp` (403). Stricter than `/mcp` for origins:
 * every state-changing request must come from the console's own origin (the scheme this server
 * listens with, the Host the request names) or one in MCP_ALLOWED_ORIGINS — not any loopback
 * origin, since a page on another local port is the same site and its form posts would carry the
 * session cookie. With MCP_AUTH_TOKEN set a person signs in with it once (rate-limited per client,
 * sign-in-limit.ts) and gets a session cookie (sessions.ts); without it (loopback only —
 * startServer refuses otherwise) the console is open, as `/mcp` is.
 */
export function createConsole(options: ConsoleOptions): ConsoleHandler {
  const { backend, logger } = options;
  const guard = createRequestGuard(options);
  const refusals = createRefusalLog(logger, {
    summary: 'console requests refused (more, not logged one by one)',
  });
  const sessions = new Sessions();
  const limiter = new SignInLimiter(options.signInLimit);
  const live = new LiveFeed((listener) => backend.watch(listener), options.maxLiveClients);
  const token = options.authToken;
  const actors = options.actors ?? createActorResolver({ adminToken: token, people: null });

  /**
   * Who makes this request: the administrator when no token is required (loopback, no
   * MCP_AUTH_TOKEN, nobody added), else whoever signed in with the session cookie — a person only
   * while they are still in the store (checked through the resolver's cache, so a removed person's
   * session ends within ACTOR_CACHE_MS). Null: not signed in.
   */
  const actorOf = async (req: Request): Promise<Actor | null> => {
    if (!(await actors.authRequired())) return ADMIN;
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const session = sessions.get(id);
    if (session === null) return null;
    if (session.tokenHash === null) return session.actor;
    const person = await actors.person(session.tokenHash);
    if (person === null) sessions.end(id);
    return person;
  };
  /** Whether the page shows the sign-out button: a token was asked for. */
  const signedIn = (res: Response): boolean => res.locals.authRequired === true;
  /** The actor requireSession found (every route after it has one). */
  const actorHere = (res: Response): Actor => res.locals.actor as Actor;
  /** A page as this actor may see it: no action forms for someone who can only view. */
  const shown = (res: Response, html: string): string =>
    canChange(actorHere(res)) ? html : withoutActions(html);

  const headers = (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
    // console's own form posts, which the Origin check must refuse.
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    next();
  };

  /**
   * The page's own origin: the scheme this server listens with (Express's req.protocol, with
   * "trust proxy" off, is the socket's: a proxy's X-Forwarded-Proto is not believed) and the Host
   * the request names (already checked against the allowed names above).
   */
  const ownOrigin = (req: Request) => `${req.protocol}://${req.headers.host ?? ''}`;

  const checkHostAndOrigin = (req: Request, res: Response, next: NextFunction) => {
    if (!guard.hostAllowed(req.headers.host)) {
      refusals.refused('console request refused: Host not allowed', 'host_not_allowed', {
        host: req.headers.host ?? null,
        ip: req.socket.remoteAddress,
      });
      res
        .status(403)
        .type('text/plain')
        .send(
          `Forbidden: Host ${JSON.stringify(req.headers.host ?? '')} is not allowed (DNS rebinding protection). Open the console through localhost or 127.0.0.1, or add the name to MCP_ALLOWED_HOSTS.`,
        );
      return;
    }
    const origin = req.headers.origin;
    const own = ownOrigin(req);
    const changes = req.method !== 'GET' && req.method !== 'HEAD';
    // Reads carry no Origin from the console's own pages; one that names another origin is a
    // foreign page reaching in (an EventSource, a fetch), refused too. A change must show it
    // comes from here: Origin, else Sec-Fetch-Site, else Referer (http-guard requestSource).
    const listed = (o: string) => guard.originListed(o);
    const source = changes
      ? requestSource(req.headers, own, listed)
      : origin === undefined
        ? { allowed: true as const }
        : requestSource({ origin }, own, listed);
    if (!source.allowed) {
      const unknown = source.why === 'unknown';
      refusals.refused(
        unknown
          ? 'console request refused: no Origin, Sec-Fetch-Site or Referer'
          : 'console request refused: Origin not allowed',
        unknown ? 'origin_missing' : 'origin_not_allowed',
        {
          method: req.method,
          path: req.path,
          ...(source.header ? { [source.header]: source.value } : {}),
          ip: req.socket.remoteAddress,
        },
      );
      const from =
        source.header === 'sec-fetch-site'
          ? `the browser says it comes from another origin (Sec-Fetch-Site: ${source.value})`
          : source.header === 'referer'
            ? `its Referer is ${source.value}`
            : `its Origin is ${JSON.stringify(source.value)}`;
      refuse(
        req,
        res,
        403,
        unknown
          ? 'Forbidden: a request that changes something must say where it comes from (an Origin header, which browsers send on every form post). Nothing was changed.'
          : `Forbidden: ${from}, not this console (${originOf(own) ?? own}). The console accepts changes only from its own pages, or from an origin listed in MCP_ALLOWED_ORIGINS. Nothing was changed.`,
      );
      return;
    }
    next();
  };

  const wantsJson = (req: Request) => (req.headers.accept ?? '').includes('application/json');

  function refuse(req: Request, res: Response, status: number, message: string): void {
    if (wantsJson(req) || req.path === '/live') {
      res.status(status).json({ ok: false, message });
    } else {
      res
        .status(status)
        .type('html')
        .send(messagePage('Refused', message, CONSOLE_PATH, false));
    }
  }

  const requireSession = async (req: Request, res: Response, next: NextFunction) => {
    let actor: Actor | null;
    try {
      actor = await actorOf(req);
      res.locals.authRequired = await actors.authRequired();
    } catch (error) {
      next(error);
      return;
    }
    if (actor !== null) {
      res.locals.actor = actor;
      next();
      return;
    }
    if (req.method === 'GET' && req.path !== '/live') {
      res.status(401).type('html').send(signInPage());
      return;
    }
    refuse(req, res, 401, 'Sign in first: the session is missing or has expired.');
  };

  const router = express.Router();
  const r = express.Router();
  router.use(CONSOLE_PATH, headers, checkHostAndOrigin, r);

  // Assets carry no data: the sign-in page needs its stylesheet before anyone signs in.
  r.get('/assets/console.js', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('text/javascript').send(CONSOLE_SCRIPT);
  });
  r.get('/assets/console.css', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('text/css').send(CONSOLE_STYLES);
  });

  r.get('/assets/favicon.svg', (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=86400');
    res.type('image/svg+xml').send(FAVICON);
  });

  const form = express.urlencoded({ extended: false, limit: BODY_LIMIT, parameterLimit: 20 });

  // Before the form is even read: the attempt is counted (SignInLimiter.attempt), and a limited
  // client's token is not looked at (not parsed, not compared), so guessing faster than
  // SIGN_IN_LIMIT allows learns nothing.
  const limitSignIn = async (req: Request, res: Response, next: NextFunction) => {
    let required: boolean;
    try {
      required = await actors.authRequired();
    } catch (error) {
      next(error);
      return;
    }
    if (!required) {
      next();
      return;
    }
    const wait = limiter.attempt(clientKey(req.socket.remoteAddress));
    if (wait === 0) {
      next();
      return;
    }
    refusals.refused('console sign-in refused: too many wrong tokens', 'sign_in_limited', {
      ip: req.socket.remoteAddress,
      retryAfterSeconds: wait,
    });
    const minutes = Math.ceil(wait / 60);
    res
      .status(429)
      .setHeader('Retry-After', String(wait))
      .type('html')
      .send(
        signInPage(
          `Too many wrong tokens from this address. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}; until then no token is checked.`,
        ),
      );
  };

  r.post('/login', limitSignIn, form, async (req: Request, res: Response, next: NextFunction) => {
    let actor: Actor | null;
    const given = typeof req.body?.token === 'string' ? req.body.token : '';
    try {
      if (!(await actors.authRequired())) {
        res.redirect(303, CONSOLE_PATH);
        return;
      }
      // The resolver compares MCP_AUTH_TOKEN's SHA-256 digest with timingSafeEqual (the time taken
      // does not depend on how much a guess gets right), and finds a person by their token's hash.
      actor = given ? await actors.resolve(given) : null;
    } catch (error) {
      next(error);
      return;
    }
    if (actor === null) {
      // Already counted by limitSignIn: a wrong token leaves the count as it is.
      refusals.refused('console sign-in refused: wrong token', 'wrong_token', {
        ip: req.socket.remoteAddress,
      });
      res
        .status(401)
        .type('html')
        .send(
          signInPage(
            'That is not the token of anyone here: neither MCP_AUTH_TOKEN nor a token `people add` printed.',
          ),
        );
      return;
    }
    limiter.succeeded(clientKey(req.socket.remoteAddress));
    const id = sessions.create(Date.now(), actor, actor.role === 'admin' ? null : tokenHash(given));
    const secure = req.protocol === 'https' ? '; Secure' : '';
    res.setHeader(
      'Set-Cookie',
      `${SESSION_COOKIE}=${id}; Path=${CONSOLE_PATH}; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(sessions.ttlMs / 1000)}${secure}`,
    );
    logger.info('console signed in', { who: actor.name, role: actor.role });
    res.redirect(303, CONSOLE_PATH);
  });

  r.post('/logout', (req: Request, res: Response) => {
    sessions.end(cookieValue(req.headers.cookie, SESSION_COOKIE));
    res.setHeader(
      'Set-Cookie',
      `${SESSION_COOKIE}=; Path=${CONSOLE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0`,
    );
    res.redirect(303, CONSOLE_PATH);
  });

  r.use(requireSession);

  // One check for every state-changing request after sign-in (the actions below and any added
  // later): someone who can only view is refused before the request is read.
  r.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'HEAD' || canChange(actorHere(res))) {
      next();
      return;
    }
    const actor = actorHere(res);
    refusals.refused('console change refused: view-only person', 'view_only', {
      who: actor.name,
      method: req.method,
      path: req.path,
    });
    refuse(req, res, 403, viewOnlyRefusal(actor));
  });

  r.get('/live', (_req: Request, res: Response) => {
    if (!live.open(res)) {
      res.status(503).json({ ok: false, message: 'Too many open consoles; close one and reload.' });
    }
  });

  const one = (value: unknown): string | null =>
    typeof value === 'string' && value !== '' ? value : null;

  r.get('/', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const status = one(req.query.status);
      const type = one(req.query.type);
      const outcome = one(req.query.outcome);
      const throughText = one(req.query.through);
      const through = throughText && /^\d{1,15}$/.test(throughText) ? Number(throughText) : null;
      const filter = {
        status: status && isEventStatus(status) ? (status as EventStatus) : null,
        type: type && type.length <= 200 ? type : null,
        outcome: outcome && isEventOutcome(outcome) ? outcome : null,
        through,
      };
      const query = searchTerm(req.query.q);
      const [counts, listed, insights, agent, search] = await Promise.all([
        backend.counts(),
        query
          ? { events: [], older: null }
          : backend.page({
              statuses: filter.status ? [filter.status] : undefined,
              types: filter.type ? [filter.type] : undefined,
              outcomes: filter.outcome ? [filter.outcome] : undefined,
              limit: PAGE_SIZE,
              through,
            }),
        backend.insights(),
        backend.agent(),
        query ? backend.search(query) : null,
      ]);
      const types = backend.types();
      res.type('html').send(
        shown(
          res,
          page({
            title: query ? `Search: ${query}` : 'Queue',
            signedIn: signedIn(res),
            banner: options.banner,
            // A search's answer is read once (it scans thousands of events): not re-run on every
            // change of the store, as the queue's page is.
            live: !query,
            body: overviewBody({
              counts,
              events: listed.events,
              older: listed.older,
              filter,
              types,
              insights,
              agent,
              toolOf: (t) => backend.toolOf(t),
              amountOf: (e) => backend.amountOf(e),
              search,
              now: Date.now(),
            }),
          }),
        ),
      );
    } catch (error) {
      next(error);
    }
  });

  r.get('/event/:id', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const id = String(req.params.id);
      const view = await backend.event(id);
      if (!view) {
        res
          .status(404)
          .type('html')
          .send(
            messagePage(
              'Not found',
              new EventNotFoundError(id).message,
              CONSOLE_PATH,
              signedIn(res),
            ),
          );
        return;
      }
      res.type('html').send(
        shown(
          res,
          page({
            title: id,
            signedIn: signedIn(res),
            banner: options.banner,
            eventId: id,
            live: true,
            body: eventBody(view, Date.now()),
          }),
        ),
      );
    } catch (error) {
      next(error);
    }
  });

  /** What an action answers: its message, and whether it did what was asked. */
  type Action = (
    id: string,
    by: string,
    text: string | null,
    body: Record<string, unknown>,
  ) => Promise<string | { failed: string }>;
  const actions: Record<string, Action> = {
    approve: async (id, by, _text, body) => {
      if (body.confirm !== 'yes') {
        // Unconfirmed: refused while the call waits (an event no longer waiting is refused by
        // the approval itself, in its own words).
        const view = await backend.event(id);
        if (view?.event.status === 'awaiting_approval') {
          throw new AppError(
            'confirmation_required',
            'tick the confirmation that repeats the amount, then Approve: nothing was dispatched',
          );
        }
      }
      const result = await backend.approve(id, by);
      return result.status === 'acked'
        ? `Approved ${id}: ${result.outcome}${result.tool_call ? ` (${result.tool_call.name})` : ''}.`
        : { failed: `Approved ${id}, but ${result.outcome}; it still waits for approval.` };
    },
    reject: async (id, by, reason) => {
      if (!reason) throw new AppError('reason_required', 'a reason is required to reject a call');
      await backend.reject(id, by, reason);
      return `Rejected ${id}; nothing was dispatched.`;
    },
    replay: async (id, by, note) => {
      await backend.replay(id, by, note ?? undefined);
      return `Replayed ${id}: it is pending again.`;
    },
    ack: async (id, by, note) => {
      await backend.ack(id, by, note ?? undefined);
      return `Acked ${id}.`;
    },
    handled: async (id, by, note) => {
      await backend.markHandled(id, by, note ?? '');
      return `Marked ${id} handled by hand; nothing was dispatched.`;
    },
  };

  /** The ask-a-person form's fields as posted: every decision field, text only. */
  const decisionValues = (body: Record<string, unknown>, view: EventView): Record<string, string> =>
    Object.fromEntries(
      (view.decisionFields ?? [])
        .map((f) => [f.name, typeof body[f.name] === 'string' ? String(body[f.name]) : ''] as const)
        .filter(([, v]) => v !== ''),
    );

  /**
   * A refused decision: while the event still waits, its page again with the person's values
   * filled and each error beside its field; once it no longer waits (someone else acted), the
   * refusal in words.
   */
  async function refuseDecision(
    req: Request,
    res: Response,
    id: string,
    status: number,
    state: DecideFormState,
    before: EventView,
  ): Promise<void> {
    const message = state.message ?? 'The decision does not fit the tool; nothing was dispatched.';
    if (wantsJson(req)) {
      res.status(status).json({ ok: false, message, issues: state.issues });
      return;
    }
    const view = (await backend.event(id)) ?? before;
    if (view.event.status !== 'awaiting_approval') {
      const back = `${CONSOLE_PATH}/event/${encodeURIComponent(id)}`;
      res
        .status(status)
        .type('html')
        .send(messagePage('Refused', message, back, signedIn(res)));
      return;
    }
    res
      .status(status)
      .type('html')
      .send(
        page({
          title: id,
          signedIn: signedIn(res),
          banner: options.banner,
          eventId: id,
          body: eventBody(view, Date.now(), state),
        }),
      );
  }

  // A person's decision where the model asked a person: a plain form post (no script needed).
  // Refused: the page again, status 400/409, every value still filled and each error beside its
  // field. Done: back to the event's page (or JSON for a script that asks for it).
  r.post('/event/:id/decide', form, async (req: Request, res: Response, next: NextFunction) => {
    const id = String(req.params.id);
    const back = `${CONSOLE_PATH}/event/${encodeURIComponent(id)}`;
    const body = (req.body ?? {}) as Record<string, unknown>;
    try {
      const view = await backend.event(id);
      if (!view) {
        refuse(req, res, 404, sentenceOf(new EventNotFoundError(id).message));
        return;
      }
      const values = decisionValues(body, view);
      const refused = (status: number, state: DecideFormState) =>
        refuseDecision(req, res, id, status, state, view);
      const tooLong = Object.entries(values).find(([, v]) => v.length > MAX_DECISION_TEXT);
      if (tooLong) {
        const issue = { field: tooLong[0], message: `at most ${MAX_DECISION_TEXT} characters` };
        await refused(400, { values, issues: [issue] });
        return;
      }
      const { action = '', ...fields } = values;
      let result: ApprovalResult;
      try {
        result = await backend.decide(
          id,
          historyName(actorHere(res), `console:${process.pid}`),
          action,
          fields,
        );
      } catch (error) {
        if (error instanceof InvalidDecisionError) {
          await refused(400, { values, issues: error.issues });
        } else if (error instanceof AppError) {
          const [status, message] = described(error);
          await refused(status, { values, issues: [], message });
        } else throw error;
        return;
      }
      logger.info('console action', { action: 'decide', id });
      if (result.status !== 'acked') {
        // The handler failed (502, as a gateway would): the person's call waits for approval.
        const failed = `Decided ${id}, but ${result.outcome}; your call waits for approval.`;
        if (wantsJson(req)) res.status(502).json({ ok: false, message: failed });
        else
          res
            .status(502)
            .type('html')
            .send(messagePage('Not done', failed, back, signedIn(res)));
      } else if (wantsJson(req)) {
        res.json({ ok: true, message: `Decided ${id}: ${action}, ${result.outcome}.` });
      } else res.redirect(303, back);
    } catch (error) {
      next(error);
    }
  });

  r.post('/event/:id/:action', form, async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const act = actions[String(req.params.action)];
    if (!act || !Object.hasOwn(actions, String(req.params.action))) {
      refuse(req, res, 404, 'No such action.');
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const text = one(body.reason) ?? one(body.note);
    // A person by their name; the administrator as before (this console process).
    const by = historyName(actorHere(res), `console:${process.pid}`);
    const back = `${CONSOLE_PATH}/event/${encodeURIComponent(id)}`;
    try {
      if (text && text.length > MAX_TEXT) {
        throw new AppError('too_long', `the text is over ${MAX_TEXT} characters`);
      }
      const done = await act(id, by, text?.trim() || null, body);
      logger.info('console action', { action: req.params.action, id });
      if (typeof done !== 'string') {
        // The handler failed (502, as a gateway would): the call still waits, and the person sees why.
        if (wantsJson(req)) res.status(502).json({ ok: false, message: done.failed });
        else
          res
            .status(502)
            .type('html')
            .send(messagePage('Not done', done.failed, back, signedIn(res)));
      } else if (wantsJson(req)) res.json({ ok: true, message: done });
      else res.redirect(303, back);
    } catch (error) {
      const [status, message] = described(error);
      if (status >= 500) logger.error('console action failed', { error });
      if (wantsJson(req)) res.status(status).json({ ok: false, message });
      else
        res
          .status(status)
          .type('html')
          .send(messagePage('Refused', message, back, signedIn(res)));
    }
  });

  r.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    // The form parser's refusals (a body over the limit, a bad encoding) are the client's: 4xx.
    const parser = error as { status?: number; type?: string };
    const [status, message] =
      typeof parser.status === 'number' && parser.status >= 400 && parser.status < 500
        ? [
            parser.status,
            parser.type === 'entity.too.large'
              ? `The form is over ${BODY_LIMIT}.`
              : 'The form could not be read.',
          ]
        : described(error);
    if (status >= 500) logger.error('console request failed', { error });
    if (res.headersSent) return;
    refuse(req, res, status, message);
  });

  return {
    router,
    close: () => {
      live.close();
      refusals.flush();
    },
  };
}

/** A refusal in words, with the status it answers: the queue's own typed errors. */
function sentenceOf(m: string): string {
  return m.charAt(0).toUpperCase() + m.slice(1) + (m.endsWith('.') ? '' : '.');
}

function described(error: unknown): [number, string] {
  const sentence = sentenceOf;
  if (error instanceof EventNotFoundError) return [404, sentence(error.message)];
  if (error instanceof InvalidTransitionError) return [409, sentence(error.message)];
  if (error instanceof StoreUnavailableError) {
    return [503, `The event store is unavailable (${error.message}); nothing was changed.`];
  }
  if (error instanceof AppError) return [400, sentence(error.message)];
  return [500, 'Unexpected error; see the server log.'];
}
