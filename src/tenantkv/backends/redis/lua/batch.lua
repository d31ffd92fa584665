#!lua
-- A batch of a store's calls, applied in the order given, in one atomic step.
-- ARGV[1]: '1' when KEYS[1..2] are the tenant's index (kept like the single-key scripts do),
-- '0' when the store has no index (KEYS[1..2] then only repeat a data key of the batch, as a
-- script must name at least the keys of its slot; they are not touched). ARGV[2]: the byte
-- length of the key prefix (a member is the key without it). Then one op after another:
--   S value ttl    SET (ttl '' for none: it drops a TTL, as SET does)
--   D              UNLINK
--   E ttl          PEXPIRE (as PEXPIREAT <server now + ttl>)
--   L value ttl    RPUSH (ttl '' keeps the list's TTL, else sets it)
--   P channel data PUBLISH (no key)
--   G              GET
--   X              EXISTS
-- Every op but P takes the next data key, from KEYS[3] on. Returns one reply per op.
-- All or none: the keys' types are checked against every op first (a WRONGTYPE stops the
-- batch before anything is written), and the script is refused whole at maxmemory.
local indexed = ARGV[1] == '1'
local member_from = tonumber(ARGV[2]) + 1
local params = {S = 2, D = 0, E = 1, L = 2, P = 2, G = 0, X = 0}

-- First pass: which key each op names, and whether every op fits its key's type.
local ops, kinds = {}, {}
local a, k = 3, 3
while a <= #ARGV do
  local code = ARGV[a]
  local op = {code = code, at = a + 1}
  if code ~= 'P' then
    op.key = KEYS[k]
    k = k + 1
    local kind = kinds[op.key]
    if kind == nil then
      kind = redis.call('TYPE', op.key)['ok']
    end
    if (code == 'G' and kind ~= 'string' and kind ~= 'none')
        or (code == 'L' and kind ~= 'list' and kind ~= 'none') then
      return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
    if code == 'S' then
      kind = 'string'
    elseif code == 'L' then
      kind = 'list'
    elseif code == 'D' then
      kind = 'none'
    end
    kinds[op.key] = kind
  end
  ops[#ops + 1] = op
  a = a + 1 + params[code]
end

local now = now_ms()
local out, expiring = {}, 0
for i, op in ipairs(ops) do
  local key, at = op.key, op.at
  local member = key and string.sub(key, member_from)
  if op.code == 'S' then
    local ttl = ARGV[at + 1]
    if ttl == '' then
      redis.call('SET', key, ARGV[at])
      if indexed then
        redis.call('ZADD', idx, 0, member)
        redis.call('ZREM', exp, member)
      end
    else
      local when = now + tonumber(ttl)
      redis.call('SET', key, ARGV[at], 'PXAT', when)
      expiring = expiring + 1
      if indexed then
        redis.call('ZADD', idx, 0, member)
        redis.call('ZADD', exp, when, member)
      end
    end
    out[i] = 0
  elseif op.code == 'D' then
    out[i] = redis.call('UNLINK', key)
    if indexed then
      redis.call('ZREM', idx, member)
      redis.call('ZREM', exp, member)
    end
  elseif op.code == 'E' then
    local when = now + tonumber(ARGV[at])
    out[i] = redis.call('PEXPIREAT', key, when)
    expiring = expiring + 1
    if indexed then
      if out[i] == 1 then
        redis.call('ZADD', idx, 0, member)
        redis.call('ZADD', exp, when, member)
      else
        redis.call('ZREM', idx, member)
        redis.call('ZREM', exp, member)
      end
    end
  elseif op.code == 'L' then
    out[i] = redis.call('RPUSH', key, ARGV[at])
    if ARGV[at + 1] ~= '' then
      redis.call('PEXPIREAT', key, now + tonumber(ARGV[at + 1]))
      expiring = expiring + 1
    end
    if indexed then
      sync(key, member)
    end
  elseif op.code == 'P' then
    out[i] = redis.call('PUBLISH', ARGV[at], ARGV[at + 1])
  elseif op.code == 'G' then
    out[i] = redis.call('GET', key)
  else
    out[i] = redis.call('EXISTS', key)
  end
end
if indexed and expiring > 0 then
  prune(PRUNE_PER_WRITE * expiring, now)
end
return out
