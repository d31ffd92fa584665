#!lua flags=allow-oom
-- Remove old keys that were moved, each only if unchanged since it was read: same type, content
-- and expiry time. KEYS are old keys (one hash slot); ARGV[1] the most list items compared,
-- ARGV[2] the budget of this call (as in migrate_read.lua: replies for a prefix of KEYS), then
-- per key the fingerprint and the expiry time (PEXPIRETIME) read before the copy. Replies {the
-- work done (in units of `cost`: the caller's measure of what a unit takes), statuses}, one
-- status per key: 'removed'; 'changed' (written again or its TTL changed: left, for another
-- pass); 'gone' (deleted or expired meanwhile).
local limit, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, spent = {}, 0
for i, key in ipairs(KEYS) do
  local kind, print, payload = content(key, limit)
  local status = 'changed'
  if kind == 'none' then
    status = 'gone'
  elseif print ~= '' and print == ARGV[2 * i + 1]
      and redis.call('PEXPIRETIME', key) == tonumber(ARGV[2 * i + 2]) then
    redis.call('UNLINK', key)
    status = 'removed'
  end
  out[i] = status
  spent = spent + cost(kind, payload)
  if spent >= budget then
    break
  end
end
return {spent, out}
