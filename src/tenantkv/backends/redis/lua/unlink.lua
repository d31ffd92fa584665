#!lua flags=allow-oom
-- UNLINK keys and drop their entries; how many keys existed. KEYS[3..] data keys; ARGV members.
-- Runs at maxmemory: it only removes.
local removed = batched('UNLINK', false, KEYS, 3)
batched('ZREM', idx, ARGV, 1)
batched('ZREM', exp, ARGV, 1)
return removed
