/**
 * The Lua scripts behind the Redis buffer. Every state change is one script, so it is atomic:
 * Redis runs a script start to finish with nothing else in between, and a script's writes reach
 * the AOF together. Scripts never read Redis's clock (no TIME): the caller passes `now`, like the
 * other adapters' injectable clock, so tests can move time.
 *
 * Every script takes ARGV[1] = key prefix, ARGV[2] = now (ms, a decimal string), ARGV[3] = the
 * calling instance's id (to tag the change notifications it publishes); its own arguments follow.
 * Keys are built from the prefix inside the scripts, so this needs a single Redis primary (with
 * replicas or Sentinel if you like), not Redis Cluster. The layout is in docs/SCALING.md.
 *
 * Single-event changes (ack, nack, hold, renew, release, approve, reject, replay, notes) are decided
 * in TypeScript by the rules in transitions.ts, like the other stores, and written by one script,
 * `sem_change`: a compare-and-set on the event's `rev`, so no other instance's change can slip
 * between the rules' check and the write. Two rules run here because they touch many events at
 * once: the claim (`claimed` in transitions.ts: due pending → claimed under the caller's token) and
 * lease expiry (`expired`: attempts + 1, dead at the policy's limit, else pending; an approver's
 * claim back to pending with attempts unchanged). They are restated in Lua, their texts built from
 * transitions.ts; the contract suite holds all three stores to the same answers.
 */

import {
  APPROVED_CALL_INTERRUPTED,
  APPROVER_TOKEN_PREFIX,
  interruptedApprovalError,
  interruptedApprovalNote,
} from '../transitions.js';
import { ORDER_SCAN } from '../object-order.js';

/** Bumped when the key layout changes incompatibly; kept at `<prefix>schema`. */
export const REDIS_SCHEMA_VERSION = 1;

/** A Lua string literal (the texts here are ASCII: JSON's escapes are Lua's). */
function lua(text: string): string {
  return JSON.stringify(text);
}

/**
 * A Lua expression for `text(by)`, `by` being a Lua variable: the rules' own wording, built from
 * the same functions, so the scripts cannot drift from transitions.ts.
 */
function luaText(text: (by: string) => string, byVar: string): string {
  const [before = '', after = ''] = text('\u0000').split('\u0000');
  return `${lua(before)} .. ${byVar} .. ${lua(after)}`;
}

const PRELUDE = `
local ORDER_SCAN = ${ORDER_SCAN}
local P = ARGV[1]
local NOW = ARGV[2]
local FROM = ARGV[3]
local NOWN = tonumber(NOW)
local changes = {}

local function int(n) return string.format('%d', n) end
local function ekey(id) return P .. 'ev:' .. id end
local function hkey(id) return P .. 'h:' .. id end

-- The event's hash as a table (fields that are null are absent), or nil.
local function load(id)
  local flat = redis.call('HGETALL', ekey(id))
  if #flat == 0 then return nil end
  local e = {}
  for i = 1, #flat, 2 do e[flat[i]] = flat[i + 1] end
  return e
end

-- The happenings log (happenings.ts): <prefix>hap, a sorted set scored by <prefix>hseq (INCR'd,
-- never reused), each member the happening's JSON. Written by the script that makes the change.
local function happen(kind, id, pause)
  local n = redis.call('INCR', P .. 'hseq')
  redis.call('ZADD', P .. 'hap', n, cjson.encode({ seq = n, kind = kind, at = NOW, event_id = id or '', pause = pause or '' }))
end

local function change(kind, e)
  changes[#changes + 1] = { kind = kind, id = e.id, type = e.type }
  -- A hold or a death is a happening, logged with the change that announces it.
  if kind == 'held' or kind == 'dead' then happen(kind, e.id, nil) end
end

-- Publishes this script's changes on <prefix>changes and returns the message ('' for none).
local function finish()
  if #changes == 0 then return '' end
  local msg = cjson.encode({ from = FROM, changes = changes })
  redis.call('PUBLISH', P .. 'changes', msg)
  return msg
end

-- The newest created ever queued (where an automatic backfill resumes) only ever moves forward.
local function raise_newest(created)
  local newest = redis.call('GET', P .. 'newest_created')
  if not newest or tonumber(created) > tonumber(newest) then
    redis.call('SET', P .. 'newest_created', created)
  end
end

-- History entries are "<at>\\t<kind>\\t<JSON of the other fields, or empty>".
local function log(id, kind, data)
  redis.call('RPUSH', hkey(id), NOW .. '\\t' .. kind .. '\\t' .. (data or ''))
end
-- Entries recorded in the same script as a state change: ARGV[i] = how many, then for each its
-- kind, its data (JSON or '') and the change it announces (or '').
local function log_records(i, e)
  local n = tonumber(ARGV[i] or '0') or 0
  for j = 0, n - 1 do
    local at = i + 1 + j * 3
    log(e.id, ARGV[at], ARGV[at + 1])
    if ARGV[at + 2] ~= '' then change(ARGV[at + 2], e) end
  end
end
local function note(text)
  if text == nil or text == '' then return '' end
  return cjson.encode({ note = text })
end

-- Secondary indexes: which sorted sets an event is in follows from its status.
local function unindex(e)
  local s = e.status
  redis.call('ZREM', P .. 's:' .. s, e.id)
  if s == 'pending' then
    redis.call('ZREM', P .. 'ready', e.id)
    redis.call('ZREM', P .. 'rt:' .. e.type, e.id)
    redis.call('ZREM', P .. 'delayed', e.id)
    if redis.call('HINCRBY', P .. 'pbt', e.type, -1) <= 0 then
      redis.call('HDEL', P .. 'pbt', e.type)
    end
  elseif s == 'claimed' then
    redis.call('ZREM', P .. 'leases', e.id)
  elseif s == 'acked' or s == 'dead' then
    redis.call('ZREM', P .. 'fin', e.id)
  end
  if e.outcome then redis.call('ZREM', P .. 'o:' .. e.outcome, e.id) end
  -- One object, one order (object-order.ts): the object's active events (<prefix>obj:<object id>),
  -- scored by created. Not o:, which holds the per-outcome indexes.
  if e.object_id then redis.call('ZREM', P .. 'obj:' .. e.object_id, e.id) end
end

local function index(e)
  local s = e.status
  redis.call('ZADD', P .. 's:' .. s, e.seq, e.id)
  if s == 'pending' then
    if e.retry_at and tonumber(e.retry_at) > NOWN then
      redis.call('ZADD', P .. 'delayed', e.retry_at, e.id)
    else
      redis.call('ZADD', P .. 'ready', e.seq, e.id)
      redis.call('ZADD', P .. 'rt:' .. e.type, e.seq, e.id)
    end
    redis.call('HINCRBY', P .. 'pbt', e.type, 1)
  elseif s == 'claimed' then
    redis.call('ZADD', P .. 'leases', e.lease_expires_at, e.id)
  elseif s == 'acked' or s == 'dead' then
    redis.call('ZADD', P .. 'fin', e.updated_at, e.id)
  end
  -- Per-outcome index (<prefix>o:<outcome>, by seq): a list filtered by outcome reads only the
  -- events that ended so.
  if e.outcome then redis.call('ZADD', P .. 'o:' .. e.outcome, e.seq, e.id) end
  if e.object_id and (s == 'pending' or s == 'claimed' or s == 'awaiting_approval') then
    redis.call('ZADD', P .. 'obj:' .. e.object_id, e.created, e.id)
  end
end

-- Whether an older event (created, then id in byte order) about the event's object is still
-- active. Members of one score sort by id, so the set's first member is the oldest.
local function held_back(id)
  local k = redis.call('HMGET', ekey(id), 'object_id', 'created')
  if not k[1] then return false end
  local first = redis.call('ZRANGE', P .. 'obj:' .. k[1], 0, 0, 'WITHSCORES')
  if not first[1] or first[1] == id then return false end
  local c, mine = tonumber(first[2]), tonumber(k[2])
  return c < mine or (c == mine and first[1] < id)
end

-- Applies \`patch\` (false = null) to the event and moves it between the indexes. Every write
-- bumps the event's rev, which sem_change compares.
local function write(e, patch)
  unindex(e)
  patch.rev = int((tonumber(e.rev or '0') or 0) + 1)
  local sets, dels = {}, {}
  for k, v in pairs(patch) do
    if v == false then
      e[k] = nil
      dels[#dels + 1] = k
    else
      e[k] = v
      sets[#sets + 1] = k
      sets[#sets + 1] = v
    end
  end
  if #sets > 0 then redis.call('HSET', ekey(e.id), unpack(sets)) end
  if #dels > 0 then redis.call('HDEL', ekey(e.id), unpack(dels)) end
  index(e)
  return e
end

-- transitions.ts afterFailure: attempts + 1; dead at the limit, else pending (retry later).
local function after_failure(e, max_attempts, retry_in_ms, reason)
  local attempts = tonumber(e.attempts) + 1
  local patch = {
    attempts = int(attempts), retry_at = false, lease_owner = false, lease_expires_at = false,
    last_error = reason, updated_at = NOW
  }
  if attempts >= max_attempts then
    patch.status = 'dead'
  else
    patch.status = 'pending'
    if retry_in_ms > 0 then patch.retry_at = int(NOWN + retry_in_ms) end
  end
  return write(e, patch)
end

-- The stored policy's attempt limit (transitions.ts QueuePolicy), else the caller's default.
local function max_attempts_of(default)
  local stored = tonumber(redis.call('HGET', P .. 'policy', 'max_attempts') or '')
  if stored and stored >= 1 then return stored end
  return default
end

local function starts(s, prefix) return s ~= nil and string.sub(s, 1, #prefix) == prefix end
local APPROVER = ${lua(APPROVER_TOKEN_PREFIX)}
local INTERRUPTED = ${lua(APPROVED_CALL_INTERRUPTED)}

-- transitions.ts approverOf: who approved, for an approver's claim token (else nil).
local function approver_of(token)
  if not starts(token, APPROVER) then return nil end
  local owner = string.match(token, '^(.+)~[^~]*$') or token
  return string.sub(owner, #APPROVER + 1)
end

-- Expired leases go back to pending (or dead), counting the attempt; transitions.ts \`expired\`,
-- with its exception: an approver's claim goes back to pending with its attempts unchanged, to be
-- dispatched again as approved. Returns how many.
local function recover(max_attempts, lease_expiry_retry_ms)
  max_attempts = max_attempts_of(max_attempts)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', NOW)
  for _, id in ipairs(ids) do
    local e = load(id)
    local by = e and e.status == 'claimed' and approver_of(e.lease_owner)
    if by then
      write(e, {
        status = 'pending', retry_at = false, lease_owner = false, lease_expires_at = false,
        last_error = ${luaText(interruptedApprovalError, 'by')}, updated_at = NOW
      })
      log(id, 'lease_expired', note(${luaText(interruptedApprovalNote, 'by')}))
      change('released', e)
    elseif e and e.status == 'claimed' then
      -- A worker dispatching an approved call again keeps the marker (unless the event dies).
      local reason = 'lease expired'
      if starts(e.last_error, INTERRUPTED) and tonumber(e.attempts) + 1 < max_attempts then
        reason = e.last_error
      end
      after_failure(e, max_attempts, lease_expiry_retry_ms, reason)
      if e.status == 'dead' then
        log(id, 'dead')
        change('dead', e)
      else
        log(id, 'lease_expired')
        change('released', e)
      end
    else
      redis.call('ZREM', P .. 'leases', id)
    end
  end
  return #ids
end
`;

/** name → Lua body (appended to the prelude). */
const BODIES = {
  /**
   * ARGV[4..]: maxPending (-1: none), dedupMs, id, type, created, livemode (1/0), objectId,
   * hasObjectId (1/0), payload. Returns {outcome, changes}; outcome queued | duplicate | full.
   */
  sem_append: `
local max_pending = tonumber(ARGV[4])
local dedup_ms = ARGV[5]
local id = ARGV[6]
local dkey = P .. 'id:' .. id
if max_pending >= 0 and redis.call('ZCARD', P .. 's:pending') >= max_pending then
  -- Full: a known id is still answered duplicate; nothing is written for a new one.
  if redis.call('EXISTS', dkey) == 1 or redis.call('EXISTS', ekey(id)) == 1 then
    return { 'duplicate', '' }
  end
  return { 'full', '' }
end
-- The authority on dedup: SET NX on the id, kept for the dedup window.
if not redis.call('SET', dkey, '1', 'NX', 'PX', dedup_ms) then return { 'duplicate', '' } end
-- Still stored past the window (pending for over 7 days): the marker is re-armed, still a duplicate.
if redis.call('EXISTS', ekey(id)) == 1 then return { 'duplicate', '' } end
local seq = redis.call('INCR', P .. 'seq')
local e = {
  id = id, seq = int(seq), type = ARGV[7], created = ARGV[8], livemode = ARGV[9],
  payload = ARGV[12], status = 'pending', attempts = '0', received_at = NOW, updated_at = NOW
}
-- In the table too: index() files an active event under its object (one object, one order).
if ARGV[11] == '1' then e.object_id = ARGV[10] end
local fields = {}
for k, v in pairs(e) do
  fields[#fields + 1] = k
  fields[#fields + 1] = v
end
redis.call('HSET', ekey(id), unpack(fields))
redis.call('ZADD', P .. 't:' .. e.type, seq, id)
index(e)
raise_newest(ARGV[8])
change('queued', e)
return { 'queued', finish() }
`,

  /**
   * ARGV[4..]: maxAttempts (default), leaseExpiryRetryMs, token, leaseMs, limit, nTypes, types...
   * The claim rule of transitions.ts (`claimed`): lease owner = the token, history "claimed".
   */
  sem_claim: `
local max_attempts = tonumber(ARGV[4])
recover(max_attempts, tonumber(ARGV[5]))
local owner = ARGV[6]
local lease_ms = tonumber(ARGV[7])
local limit = tonumber(ARGV[8])
local ntypes = tonumber(ARGV[9])
-- Nacked events whose retry time has come join the ready sets.
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', NOW)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', id)
  local e = load(id)
  if e and e.status == 'pending' then
    redis.call('ZADD', P .. 'ready', e.seq, id)
    redis.call('ZADD', P .. 'rt:' .. e.type, e.seq, id)
  end
end
-- The oldest due events, skipping those held back by an older active event about the same
-- object: a first look just past \`limit\`, then one further look, bounded by ORDER_SCAN.
local function pick(window)
  local ids, cut = {}, false
  if ntypes == 0 then
    ids = redis.call('ZRANGE', P .. 'ready', 0, window - 1)
    cut = #ids == window
  else
    local candidates = {}
    for i = 1, ntypes do
      local r = redis.call('ZRANGE', P .. 'rt:' .. ARGV[9 + i], 0, window - 1, 'WITHSCORES')
      if #r == window * 2 then cut = true end
      for j = 1, #r, 2 do candidates[#candidates + 1] = { r[j], tonumber(r[j + 1]) } end
    end
    table.sort(candidates, function(a, b) return a[2] < b[2] end)
    for i = 1, math.min(window, #candidates) do ids[i] = candidates[i][1] end
  end
  local out = {}
  for _, id in ipairs(ids) do
    if #out >= limit then break end
    if not held_back(id) then out[#out + 1] = id end
  end
  return out, cut
end
local picked, cut = pick(limit + 16)
if #picked < limit and cut and limit + 16 < ORDER_SCAN then picked = pick(ORDER_SCAN) end
local out = { '' }
for _, id in ipairs(picked) do
  local e = load(id)
  write(e, {
    status = 'claimed', lease_owner = owner, lease_expires_at = int(NOWN + lease_ms),
    updated_at = NOW
  })
  log(id, 'claimed', note(owner))
  change('claimed', e)
  out[#out + 1] = redis.call('HGETALL', ekey(id))
end
out[1] = finish()
return out
`,

  /**
   * A state change decided by transitions.ts, written only if the event is still at revision
   * ARGV[5]. ARGV[4..]: id, rev, the new state as JSON ({status, attempts, retry_at, lease_owner,
   * lease_expires_at, last_error, outcome, updated_at}, null for none), the change to announce ('' for
   * none), the history entries as JSON ([[kind, data JSON or ''], …]).
   * Returns {'ok', changes, event} | {'conflict'} | {'notfound'}.
   */
  sem_change: `
local id = ARGV[4]
local e = load(id)
if not e then return { 'notfound' } end
if (e.rev or '0') ~= ARGV[5] then return { 'conflict' } end
local state = cjson.decode(ARGV[6])
local patch = {}
for _, k in ipairs({ 'status', 'attempts', 'retry_at', 'lease_owner', 'lease_expires_at', 'last_error', 'outcome', 'updated_at' }) do
  local v = state[k]
  if v == nil or v == cjson.null then
    patch[k] = false
  elseif type(v) == 'number' then
    patch[k] = int(v)
  else
    patch[k] = v
  end
end
for _, entry in ipairs(cjson.decode(ARGV[8])) do log(id, entry[1], entry[2]) end
write(e, patch)
if ARGV[7] ~= '' then change(ARGV[7], e) end
return { 'ok', finish(), redis.call('HGETALL', ekey(id)) }
`,

  /** ARGV[4..]: maxAttempts, leaseExpiryRetryMs. Returns {count, changes}. */
  sem_recover: `
local n = recover(tonumber(ARGV[4]), tonumber(ARGV[5]))
return { n, finish() }
`,

  /** ARGV[4..]: before (ms), batch. Deletes acked and dead events last changed before it. */
  sem_prune: `
local ids = redis.call('ZRANGEBYSCORE', P .. 'fin', '-inf', '(' .. ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(ids) do
  local e = load(id)
  if e then
    unindex(e)
    redis.call('ZREM', P .. 't:' .. e.type, id)
    redis.call('DEL', ekey(id), hkey(id))
  else
    redis.call('ZREM', P .. 'fin', id)
  end
end
-- The dedup marker (<prefix>id:<id>) stays until its own expiry: the id is still a duplicate.
-- Happenings go with the events: older than the same bound (in log order, so from the front).
local gone = 0
while gone < tonumber(ARGV[5]) do
  local first = redis.call('ZRANGE', P .. 'hap', 0, 0)
  if not first[1] or tonumber(cjson.decode(first[1]).at) >= tonumber(ARGV[4]) then break end
  redis.call('ZREM', P .. 'hap', first[1])
  gone = gone + 1
end
return #ids
`,

  /** Returns {pending, claimed, acked, dead, awaiting_approval, oldestPendingReceivedAt|'', pbt...}. */
  sem_stats: `
local out = {}
for _, s in ipairs({ 'pending', 'claimed', 'acked', 'dead', 'awaiting_approval' }) do
  out[#out + 1] = redis.call('ZCARD', P .. 's:' .. s)
end
local oldest = ''
local first = redis.call('ZRANGE', P .. 's:pending', 0, 0)
if first[1] then oldest = redis.call('HGET', ekey(first[1]), 'received_at') or '' end
out[#out + 1] = oldest
local pbt = redis.call('HGETALL', P .. 'pbt')
for i = 1, #pbt do out[#out + 1] = pbt[i] end
return out
`,

  /**
   * ARGV[4..]: after (seq), limit, nStatuses, statuses..., nTypes, types..., nOutcomes, outcomes...
   * Merges the smaller side's sorted sets (per status, or per type) in seq order, filtering by
   * the other side; with outcomes, merges the per-outcome sets and filters by status and type.
   * Returns {more (1/0), last seq of the page, event...}.
   */
  sem_list: `
local after = ARGV[4]
local limit = tonumber(ARGV[5])
local i = 6
local statuses, types = {}, {}
local ns = tonumber(ARGV[i]); i = i + 1
for j = 1, ns do statuses[j] = ARGV[i]; i = i + 1 end
local nt = tonumber(ARGV[i]); i = i + 1
for j = 1, nt do types[j] = ARGV[i]; i = i + 1 end
local no = tonumber(ARGV[i] or '0') or 0; i = i + 1
local outcomes = {}
for j = 1, no do outcomes[j] = ARGV[i]; i = i + 1 end

local status_sets, type_sets, size_s, size_t = {}, {}, 0, 0
for _, s in ipairs(statuses) do
  local k = P .. 's:' .. s
  status_sets[#status_sets + 1] = k
  size_s = size_s + redis.call('ZCARD', k)
end
for _, t in ipairs(types) do
  local k = P .. 't:' .. t
  type_sets[#type_sets + 1] = k
  size_t = size_t + redis.call('ZCARD', k)
end
local sets, field, allowed = status_sets, nil, {}
-- With outcomes: the per-outcome sets, each event checked against the statuses and types asked.
local also_status, also_type = nil, nil
if no > 0 then
  sets = {}
  for _, o in ipairs(outcomes) do sets[#sets + 1] = P .. 'o:' .. o end
  also_status = {}
  for _, s in ipairs(statuses) do also_status[s] = true end
  if nt > 0 then
    also_type = {}
    for _, t in ipairs(types) do also_type[t] = true end
  end
elseif nt > 0 then
  if size_t < size_s then
    sets, field = type_sets, 'status'
    for _, s in ipairs(statuses) do allowed[s] = true end
  else
    field = 'type'
    for _, t in ipairs(types) do allowed[t] = true end
  end
end
local function keep(id)
  if also_status ~= nil then
    local st = redis.call('HMGET', ekey(id), 'status', 'type')
    return also_status[st[1]] == true and (also_type == nil or also_type[st[2]] == true)
  end
  return field == nil or allowed[redis.call('HGET', ekey(id), field)] == true
end

local want = limit + 1
local batch_size = math.max(want, 32)
local cur = after
local page = {}
while #page < want do
  local batch, bound = {}, nil
  for _, k in ipairs(sets) do
    local r = redis.call('ZRANGEBYSCORE', k, '(' .. cur, '+inf', 'WITHSCORES', 'LIMIT', 0, batch_size)
    for j = 1, #r, 2 do batch[#batch + 1] = { r[j], tonumber(r[j + 1]), r[j + 1] } end
    -- A set that filled its batch may hold more past its last score: only merge up to there.
    if #r / 2 == batch_size then
      local last = tonumber(r[#r])
      if bound == nil or last < bound[1] then bound = { last, r[#r] } end
    end
  end
  table.sort(batch, function(a, b) return a[2] < b[2] end)
  for _, item in ipairs(batch) do
    if bound ~= nil and item[2] > bound[1] then break end
    if keep(item[1]) then
      page[#page + 1] = item
      if #page == want then break end
    end
  end
  if bound == nil then break end
  cur = bound[2]
end

local more = #page > limit
local out = { more and 1 or 0, '' }
for j = 1, math.min(limit, #page) do
  out[#out + 1] = redis.call('HGETALL', ekey(page[j][1]))
  out[2] = page[j][3]
end
return out
`,

  /**
   * The agent pause (happenings.ts pauseText), set and announced together; a happening when it
   * becomes paused or its reason or note changes (isPauseHappening). ARGV[4]: the pause text.
   * Returns the change message.
   */
  sem_pause: `
local previous = redis.call('GET', P .. 'agent_pause')
redis.call('SET', P .. 'agent_pause', ARGV[4])
local nxt = cjson.decode(ARGV[4])
local same = false
if previous then
  local ok, prev = pcall(cjson.decode, previous)
  same = ok and type(prev) == 'table' and prev.paused == true and prev.reason == nxt.reason
    and prev.note == nxt.note
end
if nxt.paused == true and not same then happen('paused', nil, ARGV[4]) end
local msg = cjson.encode({ from = FROM, changes = { { kind = 'agent' } } })
redis.call('PUBLISH', P .. 'changes', msg)
return msg
`,

  /** ARGV[4..]: after (seq), limit. The happenings after it, in order (JSON members). */
  sem_happenings: `
return redis.call('ZRANGEBYSCORE', P .. 'hap', '(' .. ARGV[4], '+inf', 'LIMIT', 0, tonumber(ARGV[5]))
`,

  /** ARGV[4]: schema version. Returns the stored version (set to ARGV[4] when there was none). */
  /** ARGV[4]: a created time found by scanning the events. Returns the key's value after. */
  sem_raise_newest: `
raise_newest(ARGV[4])
return redis.call('GET', P .. 'newest_created')
`,

  sem_schema: `
redis.call('SET', P .. 'schema', ARGV[4], 'NX')
return redis.call('GET', P .. 'schema')
`,
} as const;

export type ScriptName = keyof typeof BODIES;

export const SCRIPTS: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(BODIES).map(([name, body]) => [name, PRELUDE + body]),
) as Record<ScriptName, string>;
