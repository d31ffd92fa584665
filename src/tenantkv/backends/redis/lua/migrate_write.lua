#!lua
-- Write keys moved in from another layout into the tenant's namespace. KEYS[1..2] the tenant's
-- (or shard's) index, KEYS[3] its migration ledger (a hash: member -> fingerprint of the copy
-- the migration wrote), KEYS[4..] the new keys; ARGV[1] '1' to keep the index (else KEYS[1..2]
-- only repeat the ledger, untouched), ARGV[2] the most list items compared, ARGV[3] 'write', or
-- 'check' (decide every status, write nothing: a dry run), then per key: its member (the
-- tenant-relative key), type ('none': the old key is gone), the old key's fingerprint as read,
-- its expiry time in server ms ('-1' for none), the number of items n, then n items.
-- Per key, one reply:
--   'written'   the new key was absent, or held the migration's own last copy: now the old content;
--   'same'      the new key already holds this content (an earlier run's copy, say); if it is
--               the migration's own copy, its expiry is set to the old key's (a TTL refreshed by
--               the old service since);
--   'conflict'  the new key holds something else than the migration's own last copy: kept;
--   'expired'   the old key's time has passed: not resurrected;
--   'withdrawn' (type 'none') the old key is gone and the new key held the migration's copy of
--               it: removed, so a key the old service deleted does not live on;
--   'absent'    (type 'none') nothing of the migration's to withdraw.
-- Refused as a whole at maxmemory (no allow-oom flag): nothing is written.
local indexed = ARGV[1] == '1'
local limit = tonumber(ARGV[2])
local check = ARGV[3] == 'check'
local ledger = KEYS[3]
local now = now_ms()
local out = {}
local a = 4
for i = 4, #KEYS do
  local key = KEYS[i]
  local member, kind, old_print = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local at, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local first = a + 5
  a = first + n
  local own_print = redis.call('HGET', ledger, member) or ''
  local current, print = content(key, limit)
  local own_copy = current ~= 'none' and own_print ~= '' and print == own_print
  local status
  if kind == 'none' then
    status = own_copy and 'withdrawn' or 'absent'
  elseif at ~= -1 and at <= now then
    status = 'expired'
  elseif current == 'none' then
    status = 'written'
  elseif print == old_print then
    status = 'same'
  elseif own_copy then
    status = 'written'
  else
    status = 'conflict'
  end
  if not check then
    if status == 'written' then
      redis.call('UNLINK', key)
      if kind == 'string' then
        redis.call('SET', key, ARGV[first])
      else
        for j = first, first + n - 1, 1000 do
          redis.call('RPUSH', key, unpack(ARGV, j, math.min(j + 999, first + n - 1)))
        end
      end
      if at ~= -1 then
        redis.call('PEXPIREAT', key, at)
      end
    elseif status == 'same' and own_copy then
      if at == -1 then
        redis.call('PERSIST', key)
      else
        redis.call('PEXPIREAT', key, at)
      end
    elseif status == 'withdrawn' then
      redis.call('UNLINK', key)
      redis.call('HDEL', ledger, member)
    end
    if status == 'written' or status == 'same' then
      redis.call('HSET', ledger, member, old_print)
    end
    if indexed and status ~= 'conflict' and status ~= 'absent' then
      sync(key, member)
    end
  end
  out[#out + 1] = status
end
return out
