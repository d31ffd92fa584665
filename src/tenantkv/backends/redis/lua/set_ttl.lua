#!lua flags=allow-oom
-- Make one key expire ARGV[2] ms from now (PEXPIREAT <server now + ttl>) and update its entry;
-- 1 when the key exists. KEYS[3]; ARGV: member, ttl ms.
-- Runs at maxmemory, as PEXPIRE itself does: setting a TTL frees memory sooner, never takes more.
local key, member = KEYS[3], ARGV[1]
local now, micros = clock()
local at = now + tonumber(ARGV[2])
local done = redis.call('PEXPIREAT', key, at)
if done == 1 then
  redis.call('ZADD', idx, 0, member)
  redis.call('ZADD', exp, at, member)
  sampled_prune(micros, now)
else
  redis.call('ZREM', idx, member)
  redis.call('ZREM', exp, member)
end
return done
