import {
  HOUR_MS,
  SPEND_DAYS_KEPT,
  type AgentInstance,
  type AgentLedger,
  type SlotGrant,
  type Spend,
  type SpendGrant,
  type SpendRequest,
  type SpendTotals,
} from '../ledger.js';

/**
 * The ledger of the Redis store (see buffer/ledger.ts): every check-and-count is one Lua script, so
 * it is atomic across instances. The scripts follow redis/scripts.ts's calling convention (ARGV[1]
 * the key prefix, ARGV[2] now in ms, ARGV[3] the instance id; their own arguments follow) and
 * restate the rules of buffer/ledger.ts (spendAllowed, slotWait); test/buffer/ledger-contract.ts
 * holds them to the memory ledger's answers.
 *
 * Keys: `<prefix>ledger:day:<day>` (hash: tokens, usd, rtokens, rusd), `<prefix>ledger:res:<day>`
 * (hash: reservation key → "tokens usd"), `<prefix>ledger:slots:<tool>` (sorted set: key → the
 * time its slot counts from), `<prefix>ledger:slotc:<tool>` (hash: confirmed keys),
 * `<prefix>agents` (hash: loop id → its report), `<prefix>once:<key>` (once(): until when, ms). All
 * expire on their own.
 */

const DAY_TTL_MS = (SPEND_DAYS_KEPT + 1) * 86_400_000;

const PRELUDE = `
local P = ARGV[1]
local NOWN = tonumber(ARGV[2])
local HOUR = ${HOUR_MS}
local function num(v) return tonumber(v) or 0 end
local function fmt(n) return string.format('%.17g', n) end
local function int(n) return string.format('%d', n) end
`;

export const LEDGER_SCRIPTS = {
  // once(): the key holds until when it is taken, by the store's clock (so tests can move it);
  // PX drops it from Redis after the same time.
  ledger_once: `${PRELUDE}
local okey, ttl = P .. 'once:' .. ARGV[4], tonumber(ARGV[5])
local held = tonumber(redis.call('GET', okey))
if held and held > NOWN then return '0' end
redis.call('SET', okey, fmt(NOWN + ttl), 'PX', int(ttl))
return '1'
`,
  ledger_reserve_spend: `${PRELUDE}
local day, key = ARGV[4], ARGV[5]
local tokens, usd = tonumber(ARGV[6]), tonumber(ARGV[7])
local max_tokens, max_usd = tonumber(ARGV[8]), tonumber(ARGV[9])
local dkey = P .. 'ledger:day:' .. day
local rkey = P .. 'ledger:res:' .. day
local t = redis.call('HMGET', dkey, 'tokens', 'usd', 'rtokens', 'rusd')
local totals = { fmt(num(t[1])), fmt(num(t[2])), fmt(num(t[3])), fmt(num(t[4])) }
if (max_tokens and num(t[1]) + num(t[3]) >= max_tokens) or (max_usd and num(t[2]) + num(t[4]) >= max_usd) then
  return { '0', totals[1], totals[2], totals[3], totals[4] }
end
redis.call('HINCRBY', dkey, 'rtokens', int(tokens))
redis.call('HINCRBYFLOAT', dkey, 'rusd', fmt(usd))
redis.call('HSET', rkey, key, fmt(tokens) .. ' ' .. fmt(usd))
redis.call('PEXPIRE', dkey, ${DAY_TTL_MS})
redis.call('PEXPIRE', rkey, ${DAY_TTL_MS})
return { '1', totals[1], totals[2], totals[3], totals[4] }
`,
  ledger_settle_spend: `${PRELUDE}
local day, key = ARGV[4], ARGV[5]
local tokens, usd = tonumber(ARGV[6]), tonumber(ARGV[7])
local dkey = P .. 'ledger:day:' .. day
local rkey = P .. 'ledger:res:' .. day
local held = redis.call('HGET', rkey, key)
local ht, hu = 0, 0
if held then
  local sp = string.find(held, ' ')
  ht, hu = tonumber(string.sub(held, 1, sp - 1)), tonumber(string.sub(held, sp + 1))
  redis.call('HDEL', rkey, key)
end
redis.call('HINCRBY', dkey, 'tokens', int(tokens))
redis.call('HINCRBYFLOAT', dkey, 'usd', fmt(usd))
redis.call('HINCRBY', dkey, 'rtokens', int(0 - ht))
redis.call('HINCRBYFLOAT', dkey, 'rusd', fmt(0 - hu))
redis.call('PEXPIRE', dkey, ${DAY_TTL_MS})
return 'ok'
`,
  ledger_reserve_slot: `${PRELUDE}
local tool, key = ARGV[4], ARGV[5]
local per_hour, hold = tonumber(ARGV[6]), tonumber(ARGV[7])
local skey = P .. 'ledger:slots:' .. tool
local ckey = P .. 'ledger:slotc:' .. tool
local gone = redis.call('ZRANGEBYSCORE', skey, '-inf', NOWN - HOUR)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', skey, '-inf', NOWN - HOUR)
  redis.call('HDEL', ckey, unpack(gone))
end
if redis.call('ZSCORE', skey, key) then return { '1', '0' } end
local n = redis.call('ZCARD', skey)
if n >= per_hour then
  local freeing = redis.call('ZRANGE', skey, n - per_hour, n - per_hour, 'WITHSCORES')
  return { '0', fmt(math.max(1, tonumber(freeing[2]) + HOUR - NOWN)) }
end
redis.call('ZADD', skey, NOWN + hold, key)
redis.call('PEXPIRE', skey, 2 * HOUR + hold)
redis.call('PEXPIRE', ckey, 2 * HOUR + hold)
return { '1', '0' }
`,
  ledger_confirm_slot: `${PRELUDE}
local tool, key = ARGV[4], ARGV[5]
local skey = P .. 'ledger:slots:' .. tool
local ckey = P .. 'ledger:slotc:' .. tool
redis.call('ZADD', skey, NOWN, key)
redis.call('HSET', ckey, key, '1')
local ttl = redis.call('PTTL', skey)
if ttl < 2 * HOUR then redis.call('PEXPIRE', skey, 2 * HOUR) end
ttl = redis.call('PTTL', ckey)
if ttl < 2 * HOUR then redis.call('PEXPIRE', ckey, 2 * HOUR) end
return 'ok'
`,
  ledger_release_slot: `${PRELUDE}
local tool, key = ARGV[4], ARGV[5]
if redis.call('HEXISTS', P .. 'ledger:slotc:' .. tool, key) == 0 then
  redis.call('ZREM', P .. 'ledger:slots:' .. tool, key)
end
return 'ok'
`,
  ledger_report_instance: `${PRELUDE}
local id, data, stale_before = ARGV[4], ARGV[5], tonumber(ARGV[6])
local akey = P .. 'agents'
local all = redis.call('HGETALL', akey)
for i = 1, #all, 2 do
  local ok, rec = pcall(cjson.decode, all[i + 1])
  if not ok or tonumber(rec.seen) == nil or tonumber(rec.seen) < stale_before then
    redis.call('HDEL', akey, all[i])
  end
end
redis.call('HSET', akey, id, data)
return 'ok'
`,
} as const;

export type LedgerScriptName = keyof typeof LEDGER_SCRIPTS;

export interface LedgerRedis {
  /** Runs one of LEDGER_SCRIPTS with the store's prefix, clock and instance id. */
  run<T>(name: LedgerScriptName, args: string[]): Promise<T>;
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, field: string): Promise<unknown>;
  zcount(key: string, min: number): Promise<number>;
  key(name: string): string;
  now(): number;
}

const INSTANCE_RECORD_KEPT_MS = 86_400_000;

function totalsOf(day: string, reply: string[]): SpendTotals {
  return {
    day,
    tokens: Number(reply[0] ?? 0),
    usd: Number(reply[1] ?? 0),
    reservedTokens: Number(reply[2] ?? 0),
    reservedUsd: Number(reply[3] ?? 0),
  };
}

export class RedisLedger implements AgentLedger {
  constructor(private readonly r: LedgerRedis) {}

  async reserveSpend(q: SpendRequest): Promise<SpendGrant> {
    const reply = await this.r.run<string[]>('ledger_reserve_spend', [
      q.day,
      q.key,
      String(Math.ceil(q.tokens)),
      String(q.usd),
      q.maxTokens === null ? '' : String(q.maxTokens),
      q.maxUsd === null ? '' : String(q.maxUsd),
    ]);
    return { granted: reply[0] === '1', totals: totalsOf(q.day, reply.slice(1)) };
  }

  async settleSpend(day: string, key: string, actual: Spend): Promise<void> {
    await this.r.run('ledger_settle_spend', [
      day,
      key,
      String(Math.ceil(actual.tokens)),
      String(actual.usd),
    ]);
  }

  async spend(day: string): Promise<SpendTotals> {
    const h = await this.r.hgetall(this.r.key(`ledger:day:${day}`));
    return totalsOf(day, [h.tokens ?? '0', h.usd ?? '0', h.rtokens ?? '0', h.rusd ?? '0']);
  }

  async reserveSlot(
    tool: string,
    key: string,
    perHour: number,
    holdMs: number,
  ): Promise<SlotGrant> {
    const [granted, wait] = await this.r.run<[string, string]>('ledger_reserve_slot', [
      tool,
      key,
      String(perHour),
      String(holdMs),
    ]);
    return granted === '1' ? { granted: true } : { granted: false, retryInMs: Number(wait) };
  }

  async confirmSlot(tool: string, key: string): Promise<void> {
    await this.r.run('ledger_confirm_slot', [tool, key]);
  }

  async releaseSlot(tool: string, key: string): Promise<void> {
    await this.r.run('ledger_release_slot', [tool, key]);
  }

  async slotsUsed(tool: string): Promise<number> {
    return this.r.zcount(this.r.key(`ledger:slots:${tool}`), this.r.now() - HOUR_MS);
  }

  async reportInstance(instance: AgentInstance): Promise<void> {
    await this.r.run('ledger_report_instance', [
      instance.id,
      JSON.stringify(instance),
      String(this.r.now() - INSTANCE_RECORD_KEPT_MS),
    ]);
  }

  async removeInstance(id: string): Promise<void> {
    await this.r.hdel(this.r.key('agents'), id);
  }

  async instances(freshMs: number): Promise<AgentInstance[]> {
    const all = await this.r.hgetall(this.r.key('agents'));
    const cutoff = this.r.now() - freshMs;
    return Object.values(all)
      .map((text) => JSON.parse(text) as AgentInstance)
      .filter((a) => a.seen >= cutoff);
  }

  async once(key: string, ttlMs: number): Promise<boolean> {
    return (
      (await this.r.run<string>('ledger_once', [key, String(Math.max(1, Math.ceil(ttlMs)))])) ===
      '1'
    );
  }
}
