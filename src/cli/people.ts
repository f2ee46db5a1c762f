import type { EventBuffer } from '../buffer/buffer.js';
import {
  DuplicatePersonError,
  isPersonRole,
  PERSON_NAME,
  PERSON_ROLES,
  personKey,
} from '../buffer/people.js';
import { openStore } from '../compose/store.js';
import { loadStoreSettings } from '../config/config.js';
import { defaultDataDir } from '../config/data-dir.js';
import { closest } from '../config/suggest.js';
import { ConfigError } from '../errors.js';
import { ACTOR_CACHE_MS, newPersonToken, tokenHash } from '../operations/people.js';
import { out, outJson, table } from './output.js';

/**
 * `people add|list|remove`: who may sign in to the console, call /mcp and act from the CLI under
 * their own name (buffer/people.ts). Kept in the store, so every instance on it knows them.
 */
export interface PeopleOptions {
  dataDir?: string;
  store?: string;
  redisPrefix?: string;
  json?: boolean;
}

async function withStore<T>(
  options: PeopleOptions,
  ifMissing: 'create' | 'fail',
  fn: (store: EventBuffer) => Promise<T>,
  env = process.env,
): Promise<T> {
  const store = await openStore({
    ...loadStoreSettings(options, env),
    dataDir: options.dataDir ?? env.STRIPE_EVENTS_DATA_DIR ?? defaultDataDir(env),
    ifMissing,
  });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function checkName(name: string): void {
  if (!PERSON_NAME.test(name)) {
    throw new ConfigError(
      '<name>',
      `${JSON.stringify(name)} is not a usable name. Fix: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. alice, j.doe).`,
    );
  }
}

function roleOf(can: string | undefined): (typeof PERSON_ROLES)[number] {
  const role = (can ?? '').trim().toLowerCase();
  if (isPersonRole(role)) return role;
  const close = closest(role, PERSON_ROLES);
  const meant = close.length > 0 ? ` Did you mean ${close.join(' or ')}?` : '';
  throw new ConfigError(
    '--can',
    `${JSON.stringify(can ?? '')} is not a role.${meant} Fix: --can view (reads only) or --can approve (every change too).`,
  );
}

export async function peopleAdd(
  name: string,
  options: PeopleOptions & { can?: string },
): Promise<void> {
  checkName(name);
  const role = roleOf(options.can);
  const token = newPersonToken();
  await withStore(options, 'create', async (store) => {
    try {
      await store.people.add({
        name,
        role,
        tokenHash: tokenHash(token),
        createdAt: Date.now(),
      });
    } catch (error) {
      // A usage mistake like the others: one line, exit 2.
      if (error instanceof DuplicatePersonError)
        throw new ConfigError('<name>', `${error.message}.`);
      throw error;
    }
  });
  const who = personKey(name);
  // The token on stdout alone (a script can capture it); the words on stderr.
  process.stderr.write(
    `stripe-events-mcp: added ${who}, who can ${role === 'view' ? 'view' : 'view and approve'}. Their token follows; it is stored only as a hash and will not be shown again:\n`,
  );
  if (options.json) outJson({ name: who, role, token });
  else out(token);
}

export async function peopleList(options: PeopleOptions): Promise<void> {
  await withStore(options, 'fail', async (store) => {
    const people = await store.people.list();
    const shown = people.map((p) => ({
      name: p.name,
      role: p.role,
      created: new Date(p.createdAt).toISOString(),
    }));
    if (options.json) {
      outJson(shown);
      return;
    }
    if (shown.length === 0) {
      out('nobody: add someone with `people add <name> --can view|approve`');
      return;
    }
    out(
      table(
        ['NAME', 'ROLE', 'CREATED'],
        shown.map((p) => [p.name, p.role, p.created]),
      ),
    );
  });
}

export async function peopleRemove(name: string, options: PeopleOptions): Promise<void> {
  await withStore(options, 'fail', async (store) => {
    if (await store.people.remove(name)) {
      if (options.json) outJson({ name: personKey(name), removed: true });
      else
        out(
          `${personKey(name)} removed: running servers refuse their token within ${ACTOR_CACHE_MS / 1000} seconds`,
        );
      return;
    }
    const names = (await store.people.list()).map((p) => p.name);
    const close = closest(personKey(name), names);
    const meant = close.length > 0 ? ` Did you mean ${close.join(' or ')}?` : '';
    throw new ConfigError(
      '<name>',
      `nobody named ${JSON.stringify(name)} is in this store.${meant} Fix: \`people list\` shows who is.`,
    );
  });
}
