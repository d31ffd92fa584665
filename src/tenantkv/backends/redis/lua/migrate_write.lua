#!lua
-- Write keys moved in from another layout into the tenant's namespace. KEYS[1..2] the tenant's
-- (or shard's) index, KEYS[3] its migration ledger (a hash: member -> fingerprint of the copy
-- the migration wrote), KEYS[4..] the new keys; ARGV[1] '1' to keep the index (else KEYS[1..2]
-- only repeat the ledger, untouched), ARGV[2] the most list items compared, then per key: its
-- member (the tenant-relative key), type, the old key's fingerprint as read, its expiry time in
-- server ms ('-1' for none), the number of items n, then n items (1 for a string).
-- Per key, one reply: 'written'; 'same' (the new key already holds this content: a copy from an
-- earlier run, say); 'conflict' (the new key holds something else than the migration's own
-- last copy: kept, nothing written); 'expired' (the old key's time has passed: not resurrected).
-- Refused as a whole at maxmemory (no allow-oom flag): nothing is written.
local indexed = ARGV[1] == '1'
local limit = tonumber(ARGV[2])
local ledger = KEYS[3]
local now = now_ms()
local out = {}
local a = 3
for i = 4, #KEYS do
  local key = KEYS[i]
  local member, kind, old_print = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local at, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local first = a + 5
  a = first + n
  local own_print = redis.call('HGET', ledger, member) or ''
  local status = 'written'
  if at ~= -1 and at <= now then
    status = 'expired'
  else
    local current, print = fingerprint(key, limit)
    if current ~= 'none' then
      if current == kind and print == old_print then
        status = 'same'
      elseif own_print == '' or current ~= kind or print ~= own_print then
        status = 'conflict'
      end
    end
  end
  if status == 'written' then
    redis.call('DEL', key)
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
  end
  if status == 'written' or status == 'same' then
    redis.call('HSET', ledger, member, old_print)
  end
  if indexed and status ~= 'conflict' then
    sync(key, member)
  end
  out[#out + 1] = status
end
return out
