#!lua
-- RPUSH onto one key and index it; the new length. KEYS[3]; ARGV: member, value, ttl ms
-- ('' keeps the list's TTL as RPUSH does; a number sets it to that many ms from now).
-- RPUSH comes first: on WRONGTYPE the script stops before anything is written.
-- Refused as a whole at maxmemory (no allow-oom flag): nothing is written.
local length = redis.call('RPUSH', KEYS[3], ARGV[2])
if ARGV[3] ~= '' then
  local now, micros = clock()
  redis.call('PEXPIREAT', KEYS[3], now + tonumber(ARGV[3]))
  sync(KEYS[3], ARGV[1])
  sampled_prune(micros, now)
else
  sync(KEYS[3], ARGV[1])
end
return length
