#!lua flags=no-writes,allow-oom
-- Read keys of another layout, to be moved in: KEYS are old keys (one hash slot); ARGV[1] the
-- most list items read, ARGV[2] the budget of this call (see `cost`): the script stops after the
-- key that reaches it, so a call replies for a prefix of KEYS (one key at least) and the caller
-- sends the rest again. One reply per key: {type, expiry (PEXPIRETIME: -1 none, -2 gone),
-- payload}: the value of a string, the items of a list, a too-large list's length. The caller
-- computes the fingerprint (the server's time is better spent elsewhere).
local limit, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, spent = {}, 0
for i, key in ipairs(KEYS) do
  local kind, _, payload = content(key, limit, true)
  out[i] = {kind, redis.call('PEXPIRETIME', key), payload}
  spent = spent + cost(kind, payload)
  if spent >= budget then
    break
  end
end
return out
