-- tenantkv, Redis Cluster backend: SET every KEYS[i] to ARGV[i + 1] with one TTL, atomically.
-- ARGV[1] is the TTL in ms ('' for none). The backend runs this once per hash slot (all KEYS
-- share the slot, as a script requires); on a single server a MULTI/EXEC of SETs does the same.
-- Only SET is called, so a failure (e.g. OOM) happens at the first write, before any change.
local ttl = ARGV[1]
for i = 1, #KEYS do
  if ttl == '' then
    redis.call('SET', KEYS[i], ARGV[i + 1])
  else
    redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ttl)
  end
end
return #KEYS
