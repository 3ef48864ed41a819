"""Lua scripts of the Redis job store: every state change is one atomic script.

Each script gets the store's key prefix as ARGV[1] and reads the time from
Redis (``TIME``), so leases, attempts and expiry all follow Redis' clock, not
the clocks of the machines that call it. A job hash holds the job; the queue
is a sorted set ordered by submit sequence, leases a sorted set by expiry.
A job's ledger is a hash whose fields (hold, capture, release) are written
with HSETNX, so no retry can charge or refund twice.
"""

from __future__ import annotations

from reelserve.jobs.states import ALLOWED_MOVES


def _lua_moves() -> str:
    """``check_transition``'s table as Lua, so that both backends guard the same moves."""
    rows = [f"{state.value} = {{{', '.join(f'{to.value} = true' for to in sorted(targets))}}}"
            for state, targets in ALLOWED_MOVES.items()]
    return "local ALLOWED = {" + ", ".join(rows) + "}"


NOW_FROM_TIME = """local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end"""
# Tests pin the clock (``RedisJobStore(clock=...)``): scripts then read it from P:clock.
NOW_FROM_PINNED_CLOCK = """local function now()
  return tonumber(redis.call('GET', P .. ':clock'))
end"""

# Shared helpers, prepended to the scripts that need them. ``guard`` runs before a
# script writes anything: a refused move must leave the job as it was.
COMMON = """
-- Redis 7 replicates a script's effects by default; before it, reading TIME and
-- then writing needs this (it is a no-op, kept for Redis 5 and 6).
if redis.replicate_commands then redis.replicate_commands() end
local P = ARGV[1]
""" + NOW_FROM_TIME + "\n" + _lua_moves() + """
local function guard(from, to)
  if not (ALLOWED[from] and ALLOWED[from][to]) then
    error({err = 'IllegalTransition: a ' .. tostring(from) .. ' job cannot become ' .. to})
  end
end
-- Also counts each key's running jobs (its max-concurrent cap) and queued jobs per
-- model (jobs waiting for a worker), which the fair claim and /metrics read.
local function move(from, to, job)
  redis.call('HINCRBY', P .. ':state-counts', from, -1)
  redis.call('HINCRBY', P .. ':state-counts', to, 1)
  local key_id, slug = unpack(redis.call('HMGET', job, 'key_id', 'slug'))
  for _, step in ipairs({{from, -1}, {to, 1}}) do
    if step[1] == 'PROCESSING' then
      redis.call('HINCRBY', P .. ':running', key_id, step[2])
    elseif step[1] == 'QUEUED' and slug then
      redis.call('HINCRBY', P .. ':queued-models', slug, step[2])
    end
  end
end
-- A job enters or leaves the queues: by sequence (P:queue), by fair tag (P:fair) and
-- its key's own (P:kq:<key>, by tag); a waiting worker for its model is woken. In the
-- tagged sets a job is '<seq, 15 digits>:<id>', so equal tags go oldest first.
local function tagged(seq, id)
  return string.format('%015d', tonumber(seq)) .. ':' .. id
end
local function enqueue(id, job)
  local seq, tag, key_id, slug = unpack(redis.call('HMGET', job, 'seq', 'tag', 'key_id', 'slug'))
  redis.call('ZADD', P .. ':queue', seq, id)
  redis.call('ZADD', P .. ':fair', tag or seq, tagged(seq, id))
  redis.call('ZADD', P .. ':kq:' .. key_id, tag or seq, tagged(seq, id))
  if slug then
    redis.call('LPUSH', P .. ':wake:' .. slug, 1)
    redis.call('LTRIM', P .. ':wake:' .. slug, 0, 63)
  end
end
local function dequeue(id, job)
  local seq, key_id = unpack(redis.call('HMGET', job, 'seq', 'key_id'))
  redis.call('ZREM', P .. ':queue', id)
  redis.call('ZREM', P .. ':fair', tagged(seq, id))
  redis.call('ZREM', P .. ':kq:' .. key_id, tagged(seq, id))
end
local function processing(job, attempt)
  local state, current = unpack(redis.call('HMGET', job, 'state', 'attempt'))
  return state == 'PROCESSING' and current == attempt
end
local function enqueue_webhook(id, job, t)
  local url, key_id, state, output, err, canceled = unpack(redis.call('HMGET', job,
    'webhook_url', 'key_id', 'state', 'output_key', 'error', 'canceled'))
  if not url or url == '' then return end
  local delivery = P .. ':webhook:msg_' .. id  -- records.webhook_id
  local event = cjson.encode({request_id = id, status = state,
                              output_key = output or cjson.null, error = err or cjson.null,
                              canceled = canceled == '1', at = t})
  redis.call('HSET', delivery, 'id', 'msg_' .. id, 'job_id', id, 'key_id', key_id, 'url', url,
             'event', event, 'state', 'pending', 'attempts', 0)
  redis.call('ZADD', P .. ':webhooks:due', t, 'msg_' .. id)
end
local function finish(id, job, from, state, fields, retention)
  guard(from, state)
  local t = now()
  redis.call('HSET', job, 'state', state, 'completed_at', t, 'expires_at', t + retention,
             'lease_expires_at', '', unpack(fields))
  redis.call('ZREM', P .. ':leases', id)
  redis.call('ZADD', P .. ':expiring', t + retention, id)
  local output = redis.call('HGET', job, 'output_key') or ''
  redis.call('HSET', P .. ':outputs', id, state .. '|' .. output)
  redis.call('PEXPIRE', job, math.floor(retention * 1000) + 1)
  redis.call('PEXPIRE', P .. ':ledger:' .. id, math.floor(retention * 1000) + 86400000)
  local idem = redis.call('HGET', job, 'idem')
  if idem and idem ~= '' then redis.call('PEXPIRE', idem, math.floor(retention * 1000) + 1) end
  move(from, state, job)
  enqueue_webhook(id, job, t)
end
local function fail(id, job, err, status, retention)
  local key_id, price, hold, from = unpack(redis.call('HMGET', job, 'key_id', 'price', 'hold',
                                                      'state'))
  guard(from, 'FAILED')
  if hold == 'held' then
    redis.call('HINCRBY', P .. ':key:' .. key_id, 'balance', price)
    redis.call('HSETNX', P .. ':ledger:' .. id, 'release', price)
  end
  finish(id, job, from, 'FAILED', {'hold', 'released', 'error', err, 'error_status', status,
                                   'metrics', '{"cost": 0.0}'}, retention)
end
local function requeue_or_fail(id, job, reason, max_attempts, counts, retention)
  local attempt, handed_back, seq, from =
    unpack(redis.call('HMGET', job, 'attempt', 'handed_back', 'seq', 'state'))
  local lost = tonumber(attempt) - tonumber(handed_back)
  if counts == 1 and lost >= max_attempts then
    fail(id, job, 'failed after ' .. lost .. ' attempts; last: ' .. reason, 500, retention)
    return 'FAILED'
  end
  guard(from, 'QUEUED')
  redis.call('HSET', job, 'state', 'QUEUED', 'worker_id', '', 'lease_expires_at', '',
             'progress', 0, 'last_error', reason)
  if counts == 0 then redis.call('HINCRBY', job, 'handed_back', 1) end
  redis.call('ZREM', P .. ':leases', id)
  enqueue(id, job)
  move('PROCESSING', 'QUEUED', job)
  return 'QUEUED'
end
"""

# ARGV: prefix, then per order: key_id, price, job_id, params, webhook_url,
# idempotency key ('' for none), body digest, slug, sync (1/0). Answers per order
# {code, balance, job id}: 1 queued, 0 balance too low, 2 idempotency key used with
# another body, 3 the same idempotent request again (the earlier job's id, nothing
# held), 4 the key's max-queued cap reached (the cap in place of the id), 5 the key
# revoked or gone (checked first; balance 0).
# A job's fair tag: max(vtime, key's last tag) + 1 / weight (jobs/sqlite_fair.py).
SUBMIT = COMMON + """
local t = now()
local function live(id)  -- an expired job awaiting the sweep is gone for its client
  local found, expires = unpack(redis.call('HMGET', P .. ':job:' .. id, 'id', 'expires_at'))
  return found and (not expires or expires == '' or tonumber(expires) > t)
end
local out = {}
local vtime = tonumber(redis.call('GET', P .. ':vtime') or '0')
for i = 2, #ARGV, 9 do
  local key_id, price, id, params = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local webhook, idem_key, digest = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local slug, sync = ARGV[i + 7], ARGV[i + 8]
  local key = P .. ':key:' .. key_id
  local balance, weight, last_tag, max_queued, revoked = unpack(redis.call('HMGET', key,
    'balance', 'weight', 'last_tag', 'max_queued', 'revoked'))
  balance = tonumber(balance)
  max_queued = tonumber(max_queued) or 0
  local idem = P .. ':idem:' .. key_id .. ':' .. idem_key
  local earlier = nil
  if idem_key ~= '' then earlier = redis.call('HMGET', idem, 'digest', 'job_id') end
  if not balance or revoked == '1' then
    table.insert(out, {5, 0, ''})
  elseif earlier and earlier[1] and earlier[1] ~= digest then
    table.insert(out, {2, balance, ''})
  elseif earlier and earlier[2] and live(earlier[2]) then
    table.insert(out, {3, balance, earlier[2]})
  elseif redis.call('EXISTS', P .. ':job:' .. id) == 1 then
    -- the same submit again: a client retry after a lost reply; hold nothing twice
    table.insert(out, {3, balance, id})
  elseif max_queued > 0 and redis.call('ZCARD', P .. ':kq:' .. key_id) >= max_queued then
    table.insert(out, {4, balance, tostring(max_queued)})
  elseif balance < price then
    table.insert(out, {0, balance, ''})
  else
    redis.call('HINCRBY', key, 'balance', -price)
    local seq = redis.call('INCR', P .. ':jobs:seq')
    local tag = math.max(vtime, tonumber(last_tag) or 0) + 1 / (tonumber(weight) or 1)
    redis.call('HSET', key, 'last_tag', string.format('%.17g', tag))
    if sync == '1' then  -- just ahead of the key's first queued job, if it has one
      local first = redis.call('ZRANGE', P .. ':kq:' .. key_id, 0, 0, 'WITHSCORES')
      if #first > 0 and tonumber(first[2]) <= tag then tag = tonumber(first[2]) - 0.000001 end
    end
    local job = P .. ':job:' .. id
    redis.call('HSET', job, 'id', id, 'key_id', key_id, 'params', params,
               'state', 'QUEUED', 'price', price, 'hold', 'held', 'attempt', 0, 'handed_back', 0,
               'progress', 0, 'created_at', t, 'seq', seq, 'webhook_url', webhook,
               'canceled', 0, 'slug', slug, 'tag', string.format('%.17g', tag))
    enqueue(id, job)
    redis.call('ZADD', P .. ':keyjobs:' .. key_id, seq, id)
    redis.call('HSETNX', P .. ':ledger:' .. id, 'hold', price)
    redis.call('HINCRBY', P .. ':state-counts', 'QUEUED', 1)
    redis.call('HINCRBY', P .. ':queued-models', slug, 1)
    if idem_key ~= '' then
      redis.call('HSET', idem, 'digest', digest, 'job_id', id)
      redis.call('HSET', P .. ':job:' .. id, 'idem', idem)
    end
    table.insert(out, {1, balance - price, id})
  end
end
return out
"""

# ARGV: prefix, worker_id, lease_s, fair (1: by fair tag, 0: one FIFO), then the
# models the worker claims (none: all). Jobs of keys at their max-concurrent cap and
# of other models are passed over. Answers nil or {id, attempt, params, queued_for}.
CLAIM = COMMON + """
local allowed = nil
if #ARGV > 4 then
  allowed = {}
  for i = 5, #ARGV do allowed[ARGV[i]] = true end
end
local fair = ARGV[4] == '1'
local line = P .. (fair and ':fair' or ':queue')
local blocked = {}
local function key_blocked(key_id)
  if blocked[key_id] == nil then
    local cap = tonumber(redis.call('HGET', P .. ':key:' .. key_id, 'max_concurrent') or '0')
    local running = tonumber(redis.call('HGET', P .. ':running', key_id) or '0')
    blocked[key_id] = cap ~= nil and cap > 0 and running >= cap
  end
  return blocked[key_id]
end
local id = nil
local start = 0
while id == nil do
  local ids = redis.call('ZRANGE', line, start, start + 99)
  if #ids == 0 then return nil end
  for _, member in ipairs(ids) do
    local candidate = fair and string.sub(member, 17) or member
    local key_id, slug = unpack(redis.call('HMGET', P .. ':job:' .. candidate, 'key_id', 'slug'))
    if (allowed == nil or (slug and allowed[slug])) and not key_blocked(key_id) then
      id = candidate
      break
    end
  end
  start = start + 100
end
local job = P .. ':job:' .. id
local t = now()
guard(redis.call('HGET', job, 'state'), 'PROCESSING')
dequeue(id, job)
local tag = tonumber(redis.call('HGET', job, 'tag') or '0')
if tag > tonumber(redis.call('GET', P .. ':vtime') or '0') then
  redis.call('SET', P .. ':vtime', string.format('%.17g', tag))
end
local attempt = redis.call('HINCRBY', job, 'attempt', 1)
local lease = t + tonumber(ARGV[3])
redis.call('HSET', job, 'state', 'PROCESSING', 'worker_id', ARGV[2], 'lease_expires_at', lease,
           'progress', 0)
redis.call('HSETNX', job, 'started_at', t)
redis.call('ZADD', P .. ':leases', lease, id)
move('QUEUED', 'PROCESSING', job)
local params, created = unpack(redis.call('HMGET', job, 'params', 'created_at'))
return {id, attempt, params, tostring(t - tonumber(created))}
"""

# ARGV: prefix, id, attempt, lease_s, progress. Answers 1, or 0 when the attempt is stale.
RENEW = COMMON + """
local job = P .. ':job:' .. ARGV[2]
if not processing(job, ARGV[3]) then return 0 end
local lease = now() + tonumber(ARGV[4])
local progress = math.max(tonumber(redis.call('HGET', job, 'progress') or 0), tonumber(ARGV[5]))
redis.call('HSET', job, 'lease_expires_at', lease, 'progress', progress)
redis.call('ZADD', P .. ':leases', lease, ARGV[2])
return 1
"""

# ARGV: prefix, id, attempt, output_key, metrics_json, retention. Answers 1, or 0
# when the attempt is stale; a retry of a call that already succeeded answers 1.
COMPLETE = COMMON + """
local id = ARGV[2]
local job = P .. ':job:' .. id
local state, attempt, output = unpack(redis.call('HMGET', job, 'state', 'attempt', 'output_key'))
if state == 'COMPLETED' and attempt == ARGV[3] and output == ARGV[4] then return 1 end
if not processing(job, ARGV[3]) then return 0 end
redis.call('HSET', job, 'output_key', ARGV[4])
redis.call('HSETNX', P .. ':ledger:' .. id, 'capture', redis.call('HGET', job, 'price'))
finish(id, job, 'PROCESSING', 'COMPLETED',
       {'hold', 'captured', 'metrics', ARGV[5], 'progress', 1}, tonumber(ARGV[6]))
return 1
"""

# ARGV: prefix, id, attempt, error, error_status, retention.
FAIL = COMMON + """
local id = ARGV[2]
local job = P .. ':job:' .. id
local state, attempt, err = unpack(redis.call('HMGET', job, 'state', 'attempt', 'error'))
if state == 'FAILED' and attempt == ARGV[3] and err == ARGV[4] then return 1 end
if not processing(job, ARGV[3]) then return 0 end
fail(id, job, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
"""

# ARGV: prefix, id, attempt, reason, max_attempts, counts (1/0), retention.
ABANDON = COMMON + """
local id = ARGV[2]
local job = P .. ':job:' .. id
if not processing(job, ARGV[3]) then return 0 end
requeue_or_fail(id, job, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
return 1
"""

# ARGV: prefix, max_attempts, retention. Answers how many leases had run out.
RECOVER = COMMON + """
local expired = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now())
local recovered = 0
for _, id in ipairs(expired) do
  local job = P .. ':job:' .. id
  if redis.call('HGET', job, 'state') == 'PROCESSING' then
    requeue_or_fail(id, job, 'worker lost (lease expired)', tonumber(ARGV[2]), 1,
                    tonumber(ARGV[3]))
    recovered = recovered + 1
  else
    redis.call('ZREM', P .. ':leases', id)
  end
end
return recovered
"""

# ARGV: prefix, ledger grace (s). Answers {count, output keys...} of the jobs whose
# retention ended. A job's ledger is kept for the grace beyond the job (it also
# carries a TTL as a backstop for a deployment that never sweeps).
SWEEP = COMMON + """
local t = now()
local expired = redis.call('ZRANGEBYSCORE', P .. ':expiring', '-inf', t, 'WITHSCORES')
local out = {#expired / 2}
for i = 1, #expired, 2 do
  local id = expired[i]
  redis.call('ZADD', P .. ':ledgers-expiring', tonumber(expired[i + 1]) + tonumber(ARGV[2]), id)
  local entry = redis.call('HGET', P .. ':outputs', id) or '|'
  local sep = string.find(entry, '|', 1, true)
  local state, output = string.sub(entry, 1, sep - 1), string.sub(entry, sep + 1)
  if state ~= '' then redis.call('HINCRBY', P .. ':state-counts', state, -1) end
  if output ~= '' then table.insert(out, output) end
  redis.call('DEL', P .. ':job:' .. id)
  redis.call('HDEL', P .. ':outputs', id)
  redis.call('ZREM', P .. ':expiring', id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':ledgers-expiring', '-inf', t)) do
  redis.call('DEL', P .. ':ledger:' .. id)
  redis.call('ZREM', P .. ':ledgers-expiring', id)
end
return out
"""

# ARGV: prefix, key_id, limit, window_s. Answers {allowed 1/0, reset_at}.
RATE_LIMIT = COMMON + """
local t = now()
local window = tonumber(ARGV[4])
local start = math.floor(t / window) * window
local counter = P .. ':rate:' .. ARGV[2] .. ':' .. start
local count = redis.call('INCR', counter)
if count == 1 then redis.call('PEXPIRE', counter, math.ceil(window * 1000) + 1000) end
return {count <= tonumber(ARGV[3]) and 1 or 0, tostring(start + window)}
"""

# ARGV: prefix, id, error_status, retention. Answers 'OK', 'MISSING', or the state
# the job already ended in.
CANCEL = COMMON + """
local id = ARGV[2]
local job = P .. ':job:' .. id
local state = redis.call('HGET', job, 'state')
if not state then return 'MISSING' end
local expires = redis.call('HGET', job, 'expires_at')
if expires and expires ~= '' and tonumber(expires) <= now() then return 'MISSING' end
if state ~= 'QUEUED' and state ~= 'PROCESSING' then return state end
if state == 'QUEUED' then dequeue(id, job) end
redis.call('HSET', job, 'canceled', 1)
fail(id, job, 'canceled', tonumber(ARGV[3]), tonumber(ARGV[4]))
return 'OK'
"""

# ARGV: prefix, limit, lease_s. Answers the due deliveries, each {id, job, key, url,
# event, attempts}; each is pushed lease_s into the future while it is being sent.
CLAIM_WEBHOOKS = COMMON + """
local t = now()
local due = redis.call('ZRANGEBYSCORE', P .. ':webhooks:due', '-inf', t, 'LIMIT', 0,
                       tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', P .. ':webhooks:due', t + tonumber(ARGV[3]), id)
  table.insert(out, redis.call('HMGET', P .. ':webhook:' .. id, 'id', 'job_id', 'key_id', 'url',
                               'event', 'attempts'))
end
return out
"""


def reading_pinned_clock(script: str) -> str:
    """The script with its clock read from ``P:clock`` instead of Redis' TIME."""
    assert NOW_FROM_TIME in script
    return script.replace(NOW_FROM_TIME, NOW_FROM_PINNED_CLOCK)


# Reads that would otherwise take two round trips, the second depending on the first:
# one script each, since every authenticated request finds its key and every poll of
# a queued job asks its place. ARGV[1] is the prefix; neither reads the clock.
FIND_KEY = """
local id = redis.call('HGET', ARGV[1] .. ':keys:byhash', ARGV[2])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. ':key:' .. id)
"""
# The place of job ARGV[2] in the fair queue, by its member '<seq, 15 digits>:<id>'.
FAIR_RANK = """
local seq = redis.call('HGET', ARGV[1] .. ':job:' .. ARGV[2], 'seq')
if not seq then return false end
return redis.call('ZRANK', ARGV[1] .. ':fair',
                  string.format('%015d', tonumber(seq)) .. ':' .. ARGV[2])
"""
