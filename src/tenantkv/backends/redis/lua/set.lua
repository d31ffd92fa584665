#!lua
-- SET one key and index it. KEYS[3] data key; ARGV: member, value, ttl ms ('' for none).
-- A TTL is written as PXAT <server now + ttl>, so the expiry entry is that exact time.
-- Refused as a whole at maxmemory (no allow-oom flag): nothing is written.
local key, member, ttl = KEYS[3], ARGV[1], ARGV[3]
if ttl == '' then
  redis.call('SET', key, ARGV[2])
  redis.call('ZADD', idx, 0, member)
  redis.call('ZREM', exp, member)
else
  local now, micros = clock()
  local at = now + tonumber(ttl)
  redis.call('SET', key, ARGV[2], 'PXAT', at)
  redis.call('ZADD', idx, 0, member)
  redis.call('ZADD', exp, at, member)
  sampled_prune(micros, now)
end
