#!lua flags=no-writes,allow-oom
-- Read keys of another layout, to be moved in: KEYS are old keys (one hash slot); ARGV[1] the
-- most list items read. One reply per key: {type, fingerprint, expiry (PEXPIRETIME: -1 none,
-- -2 gone), payload}: the value of a string, the items of a list, nothing for other types or
-- for lists over the limit (type 'toolarge', payload its length).
local limit = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local kind, print = fingerprint(key, limit)
  local at = redis.call('PEXPIRETIME', key)
  local payload = ''
  if kind == 'string' then
    payload = redis.call('GET', key)
  elseif kind == 'list' then
    payload = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'toolarge' then
    payload = tostring(redis.call('LLEN', key))
  end
  out[i] = {kind, print, at, payload}
end
return out
