import os from 'node:os';
import type { PeopleStore } from '../buffer/people.js';
import { AppError, ConfigError } from '../errors.js';
import {
  canChange,
  createActorResolver,
  historyName,
  viewOnlyRefusal,
} from '../operations/people.js';

/** What the CLI may ask the OS about who runs it; a parameter so the fallbacks can be tested. */
export interface Whoami {
  userInfo: () => { username: string };
  hostname: () => string;
}

const system: Whoami = { userInfo: () => os.userInfo(), hostname: () => os.hostname() };

/**
 * Who asks, for the history: `cli:<user>`. A service manager, cron or a container often starts
 * processes without USER (LOGNAME is the POSIX name, USERNAME Windows'), so the account is asked
 * for next; os.userInfo() throws for a uid with no passwd entry (a container run as an arbitrary
 * uid), and then the machine is the best name left. Never the process id: it names nobody once the
 * command has exited.
 */
export function cliActor(env: NodeJS.ProcessEnv = process.env, whoami: Whoami = system): string {
  const named = [env.USER, env.LOGNAME, env.USERNAME].find((v) => v !== undefined && v !== '');
  if (named !== undefined) return `cli:${named}`;
  try {
    const { username } = whoami.userInfo();
    if (username) return `cli:${username}`;
  } catch {
    // no passwd entry for this uid: fall through to the host
  }
  return `cli:${whoami.hostname()}`;
}

export const TOKEN_ENV = 'STRIPE_EVENTS_TOKEN';

/**
 * Who a state-changing command acts as. With STRIPE_EVENTS_TOKEN set, the person (or the
 * administrator, MCP_AUTH_TOKEN) that token names: it must name someone (exit 2), who must be
 * allowed to change things (a view-only person is refused, exit 1), and the history names them.
 * Unset (or empty), the shell user, as always: `cli:<user>`. The token adds a name and a role
 * check; whoever can open the store's file or Redis can change it without one.
 */
export async function cliChangeActor(
  people: PeopleStore,
  env: NodeJS.ProcessEnv = process.env,
  whoami: Whoami = system,
): Promise<string> {
  const token = env[TOKEN_ENV]?.trim();
  if (!token) return cliActor(env, whoami);
  const resolver = createActorResolver({
    adminToken: env.MCP_AUTH_TOKEN?.trim() || null,
    people,
    cacheMs: 1,
  });
  const actor = await resolver.resolve(token);
  if (actor === null) {
    throw new ConfigError(
      TOKEN_ENV,
      'names nobody in this store: it is neither MCP_AUTH_TOKEN nor a token `people add` printed for this store. Fix: set it to your token (check --data-dir / --store), or unset it to act as the shell user.',
    );
  }
  if (!canChange(actor)) throw new AppError('view_only', viewOnlyRefusal(actor));
  return historyName(actor, cliActor(env, whoami));
}
