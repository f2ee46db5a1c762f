import type { Redis } from 'ioredis';
import type {
  SubscriptionPatch,
  SubscriptionStore,
  WebhookSubscription,
} from '../subscriptions.js';

/**
 * The Redis store's subscriptions (buffer/subscriptions.ts). Keys, under the store's prefix:
 * `esubs` (hash: id → principal), `esub:<id>` (hash: field → JSON value), `esub:lease:<id>` (the
 * lease holder, expiring on its own with PX). Every change that reads before it writes (a lease,
 * a delivery's advance, a patch of an existing subscription) is one Lua script, so two instances
 * cannot both hold a lease, and an instance that lost its lease cannot write.
 */

const LEASE = `
local sub, lease = KEYS[1], KEYS[2]
if redis.call('EXISTS', sub) == 0 then return 0 end
local cur = redis.call('GET', lease)
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', lease, ARGV[1], 'PX', ARGV[2])
return 1
`;

/** ARGV: owner ('' for an unconditional patch), then field, value pairs. */
const PATCH = `
local sub, lease = KEYS[1], KEYS[2]
if redis.call('EXISTS', sub) == 0 then return 0 end
if ARGV[1] ~= '' and redis.call('GET', lease) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', sub, ARGV[i], ARGV[i + 1]) end
return 1
`;

const UNLEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

const REMOVE = `
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

const PUT = `
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

export interface RedisSubscriptionsDeps {
  client: Redis;
  /** Runs a command through the store's connection (StoreUnavailableError when it is down). */
  call<T>(fn: () => Promise<T>): Promise<T>;
  key(name: string): string;
}

function fields(patch: object): string[] {
  return Object.entries(patch).flatMap(([k, v]) => [k, JSON.stringify(v ?? null)]);
}

function parse(hash: Record<string, string>): WebhookSubscription | null {
  if (Object.keys(hash).length === 0) return null;
  return Object.fromEntries(
    Object.entries(hash).map(([k, v]) => [k, JSON.parse(v) as unknown]),
  ) as unknown as WebhookSubscription;
}

export class RedisSubscriptions implements SubscriptionStore {
  constructor(private readonly deps: RedisSubscriptionsDeps) {}

  private keys(id: string): [string, string] {
    return [this.deps.key(`esub:${id}`), this.deps.key(`esub:lease:${id}`)];
  }

  private run(lua: string, keys: string[], args: string[]): Promise<unknown> {
    return this.deps.call(() => this.deps.client.eval(lua, keys.length, ...keys, ...args));
  }

  async put(subscription: WebhookSubscription): Promise<void> {
    const [sub] = this.keys(subscription.id);
    await this.run(
      PUT,
      [sub, this.deps.key('esubs')],
      [subscription.id, subscription.principal, ...fields(subscription)],
    );
  }

  async get(id: string): Promise<WebhookSubscription | null> {
    const [sub] = this.keys(id);
    return parse(await this.deps.call(() => this.deps.client.hgetall(sub)));
  }

  async patch(id: string, patch: SubscriptionPatch): Promise<boolean> {
    return (await this.run(PATCH, this.keys(id), ['', ...fields(patch)])) === 1;
  }

  async remove(id: string): Promise<boolean> {
    const [sub, lease] = this.keys(id);
    return (await this.run(REMOVE, [sub, lease, this.deps.key('esubs')], [id])) === 1;
  }

  async all(): Promise<WebhookSubscription[]> {
    const ids = await this.deps.call(() => this.deps.client.hkeys(this.deps.key('esubs')));
    const out: WebhookSubscription[] = [];
    for (const id of ids.sort()) {
      const sub = await this.get(id);
      if (sub) out.push(sub);
    }
    return out;
  }

  async countByPrincipal(principal: string): Promise<number> {
    const owners = await this.deps.call(() => this.deps.client.hvals(this.deps.key('esubs')));
    return owners.filter((p) => p === principal).length;
  }

  async lease(id: string, owner: string, leaseMs: number): Promise<boolean> {
    return (await this.run(LEASE, this.keys(id), [owner, String(Math.max(1, leaseMs))])) === 1;
  }

  async advance(id: string, owner: string, patch: SubscriptionPatch): Promise<boolean> {
    return (await this.run(PATCH, this.keys(id), [owner, ...fields(patch)])) === 1;
  }

  async unlease(id: string, owner: string): Promise<void> {
    await this.run(UNLEASE, [this.keys(id)[1]], [owner]);
  }
}
