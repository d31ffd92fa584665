-- tenantkv, Redis backends without the key index: set_many. SET every KEYS[i] to ARGV[i + 1]
-- with one TTL, atomically. ARGV[1] is the TTL in ms ('' for none). On a cluster the backend
-- runs this once per hash slot (a script's keys must share one); on a single server once for
-- all keys. One EVALSHA costs the client a fraction of a MULTI/EXEC of the same SETs.
-- Without a TTL: MSET, in slices of 1000 keys (Lua's unpack() has a small stack limit).
-- Only SET/MSET are called, so a failure (e.g. OOM) happens at the first write, before any change.
local ttl, n = ARGV[1], #KEYS
if ttl == '' then
  for first = 1, n, 1000 do
    local flat = {}
    for i = first, math.min(first + 999, n) do
      flat[#flat + 1] = KEYS[i]
      flat[#flat + 1] = ARGV[i + 1]
    end
    redis.call('MSET', unpack(flat))
  end
else
  for i = 1, n do
    redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ttl)
  end
end
return n
