#!lua flags=allow-oom
-- UNLINK keys and drop their entries: {how many keys existed, microseconds it ran}. KEYS[3..]
-- data keys; ARGV members.
-- Runs at maxmemory: it only removes.
local began = clock_us()
local removed = batched('UNLINK', false, KEYS, 3)
batched('ZREM', idx, ARGV, 1)
batched('ZREM', exp, ARGV, 1)
return {removed, clock_us() - began}
