#!lua flags=allow-oom
-- Prune up to ARGV[1] expired entries, then count the live ones in O(log N).
-- Returns {pruned, live}.
-- Runs at maxmemory: it reads, and prunes (only removes).
local now = now_ms()
local pruned = prune(tonumber(ARGV[1]), now)
local expired = redis.call('ZCOUNT', exp, '-inf', string.format('(%d', now))
return {pruned, redis.call('ZCARD', idx) - expired}
