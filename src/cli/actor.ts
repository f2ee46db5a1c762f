import os from 'node:os';

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
