#!lua
-- RPUSH onto one key and index it; the new length. KEYS[3]; ARGV: member, value.
-- RPUSH comes first: on WRONGTYPE the script stops before anything is written.
-- Refused as a whole at maxmemory (no allow-oom flag): nothing is written.
local length = redis.call('RPUSH', KEYS[3], ARGV[2])
sync(KEYS[3], ARGV[1])
return length
