#!lua flags=allow-oom
-- Read up to ARGV[3] entries between lexicographic bounds ARGV[1] and ARGV[2] (ZRANGE BYLEX
-- syntax). Returns {fetched, last member fetched, live members, microseconds it ran}. Entries
-- of expired keys are never returned: up to ARGV[3] of them are pruned first, and if more
-- remain, this chunk's members are checked one by one against their expiry.
-- Runs at maxmemory: it reads, and prunes (only removes).
local began = clock_us()
local limit = tonumber(ARGV[3])
local now = now_ms()
prune(limit, now)
local members = redis.call('ZRANGE', idx, ARGV[1], ARGV[2], 'BYLEX', 'LIMIT', 0, limit)
if #members == 0 then
  return {0, '', {}, clock_us() - began}
end
local live = members
if redis.call('ZCOUNT', exp, '-inf', string.format('(%d', now)) > 0 then
  live = {}
  local dead = {}
  for i = 1, #members, 1000 do
    local part = {unpack(members, i, math.min(i + 999, #members))}
    local scores = redis.call('ZMSCORE', exp, unpack(part))
    for j = 1, #part do
      local at = scores[j]
      if at and tonumber(at) < now then
        dead[#dead + 1] = part[j]
      else
        live[#live + 1] = part[j]
      end
    end
  end
  if #dead > 0 then
    batched('ZREM', idx, dead, 1)
    batched('ZREM', exp, dead, 1)
  end
end
return {#members, members[#members], live, clock_us() - began}
