#!lua flags=allow-oom
-- Remove old keys that were moved, each only if unchanged since it was read: KEYS are old keys
-- (one hash slot); ARGV[1] the most list items compared, then one fingerprint per key (as read
-- before the copy). One reply per key: 1 removed, 0 left (changed meanwhile, or gone).
local limit = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local _, print = fingerprint(key, limit)
  if print ~= '' and print == ARGV[i + 1] then
    out[i] = redis.call('UNLINK', key)
  else
    out[i] = 0
  end
end
return out
