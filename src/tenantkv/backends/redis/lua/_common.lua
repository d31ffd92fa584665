-- tenantkv: shared prelude of every index script (the loader puts it after each script's
-- first line, its shebang, and before the rest).
--
-- KEYS[1] is the tenant's index: every key of the tenant, member = tenant-relative key, score 0,
-- so members are ordered by their bytes. KEYS[2] is the expiry set: keys with a TTL, score =
-- absolute expiry time in ms on this server's clock (PEXPIRETIME). Data keys follow from KEYS[3].
-- Every key a script touches is declared in KEYS and shares the hash tag of the tenant (or of
-- the tenant shard: a sharded tenant has one index per shard, in that shard's slot), so the scripts
-- run unchanged on Redis Cluster. Scripts need Redis >= 7.0 (PEXPIRETIME, ZRANGE ... BY*).
-- A key counts as expired when now > its expiry time, as Redis decides.
local idx, exp = KEYS[1], KEYS[2]

-- The server's time in ms, and the microseconds within its second.
local function clock()
  local t = redis.call('TIME')
  local micros = tonumber(t[2])
  return tonumber(t[1]) * 1000 + math.floor(micros / 1000), micros
end

local function now_ms()
  return (clock())
end

-- The server's time in microseconds. A paced script (range, unlink, check) reads it first and
-- last and replies how long it ran: the caller sizes the next call from the server's own time,
-- not from a round trip that also holds the queue ahead of the call (TIME is the real clock,
-- not the frozen time keys expire by in a script).
local function clock_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Run `command [head] items[first..]` in slices of 1000 items (Lua's unpack() has a small
-- stack limit); the sum of integer replies.
local function batched(command, head, items, first)
  local total = 0
  for i = first, #items, 1000 do
    local last = math.min(i + 999, #items)
    local reply
    if head then
      reply = redis.call(command, head, unpack(items, i, last))
    else
      reply = redis.call(command, unpack(items, i, last))
    end
    if type(reply) == 'number' then
      total = total + reply
    end
  end
  return total
end

-- Make the entry of `member` tell the truth about data key `key`.
local function sync(key, member)
  local at = redis.call('PEXPIRETIME', key)
  if at == -2 then
    redis.call('ZREM', idx, member)
    redis.call('ZREM', exp, member)
  else
    redis.call('ZADD', idx, 0, member)
    if at == -1 then
      redis.call('ZREM', exp, member)
    else
      redis.call('ZADD', exp, at, member)
    end
  end
end

-- Drop up to `limit` entries of keys that have expired; how many were dropped.
local function prune(limit, now)
  local dead = redis.call('ZRANGE', exp, '-inf', string.format('(%d', now),
                          'BYSCORE', 'LIMIT', 0, limit)
  if #dead > 0 then
    batched('ZREM', idx, dead, 1)
    batched('ZREM', exp, dead, 1)
  end
  return #dead
end

-- Writes that add expiry entries also prune expired ones, at twice the rate they add entries,
-- so a tenant that is written but never listed keeps a bounded index. A batch write prunes 2
-- per key. A single-key write samples, as Redis's own active expiry does: it prunes
-- PRUNE_PER_WRITE * PRUNE_EVERY entries when the server clock's microseconds are a multiple of
-- PRUNE_EVERY (as good as random from one write to the next), the same rate on average, and
-- skips the look-up of expired entries on the other writes.
local PRUNE_PER_WRITE = 2
local PRUNE_EVERY = 8

local function sampled_prune(micros, now)
  if micros % PRUNE_EVERY == 0 then
    prune(PRUNE_PER_WRITE * PRUNE_EVERY, now)
  end
end

-- Moving in from another layout (migrate_*.lua): a key's type, a fingerprint of type and
-- content ('<type>:<sha1>', whatever encoding the server uses) and the content itself: the value
-- of a string, the items of a list, a list's length when it is over `limit` (type 'toolarge').
-- A list's fingerprint hashes the items' lengths, then the items, so no two different lists share
-- one (and no string is made per item: this is most of a migration script's time).
local function list_print(items)
  local lengths = {}
  for i, item in ipairs(items) do
    lengths[i] = #item
  end
  return 'list:' .. redis.sha1hex(table.concat(lengths, ',') .. '|' .. table.concat(items))
end

-- `bare`: no fingerprint (the reader computes it from the content, tenantkv/backends/base.py).
local function content(key, limit, bare)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'string' then
    local value = redis.call('GET', key)
    return kind, bare and '' or 'string:' .. redis.sha1hex(value), value
  elseif kind == 'list' then
    local length = redis.call('LLEN', key)
    if length > limit then
      return 'toolarge', '', length
    end
    local items = redis.call('LRANGE', key, 0, -1)
    return kind, bare and '' or list_print(items), items
  end
  return kind, '', ''
end

-- What handling one key's content costs a migration script, in the units of MOVE_BUDGET
-- (tenantkv/backends/base.py, which has the same rule): one per key, one per list item, one per
-- 256 bytes of content.
local function cost(kind, payload)
  if kind == 'list' then
    local bytes = 0
    for _, item in ipairs(payload) do
      bytes = bytes + #item
    end
    return 1 + #payload + math.floor(bytes / 256)
  elseif kind == 'string' then
    return 1 + math.floor(#payload / 256)
  end
  return 1
end
