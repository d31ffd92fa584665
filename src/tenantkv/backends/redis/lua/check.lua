#!lua flags=allow-oom
-- Compare data keys KEYS[3..] with their entries; ARGV: 'repair' or 'check', then members.
-- One status per key: 0 consistent, 1 data without entry, 2 entry without data, 3 wrong
-- expiry; then the microseconds it ran. An entry whose key merely expired (not yet pruned) is
-- consistent. With 'repair', every inconsistent entry is made to match its key.
-- Runs at maxmemory: it reads; a repair adds at most one entry per existing key.
local began = clock_us()
local repair = ARGV[1] == 'repair'
local members = {unpack(ARGV, 2)}
local now = now_ms()
local out = {}
local add, expire, forget, persist = {}, {}, {}, {}
for i = 1, #members, 1000 do
  local part = {unpack(members, i, math.min(i + 999, #members))}
  local indexed = redis.call('ZMSCORE', idx, unpack(part))
  local expiries = redis.call('ZMSCORE', exp, unpack(part))
  for j = 1, #part do
    local member, key = part[j], KEYS[i + j + 1]
    local at = redis.call('PEXPIRETIME', key)
    local expiry = expiries[j] and tonumber(expiries[j])
    local status = 0
    if at == -2 then
      if indexed[j] and not (expiry and expiry < now) then
        status = 2
      end
    elseif not indexed[j] then
      status = 1
    elseif at == -1 then
      if expiry then
        status = 3
      end
    elseif expiry ~= at then
      status = 3
    end
    out[#out + 1] = status
    if status ~= 0 then
      if at == -2 then
        forget[#forget + 1] = member
      else
        add[#add + 1] = 0
        add[#add + 1] = member
        if at == -1 then
          persist[#persist + 1] = member
        else
          expire[#expire + 1] = at
          expire[#expire + 1] = member
        end
      end
    end
  end
end
if repair then
  batched('ZADD', idx, add, 1)
  batched('ZADD', exp, expire, 1)
  batched('ZREM', exp, persist, 1)
  batched('ZREM', idx, forget, 1)
  batched('ZREM', exp, forget, 1)
end
out[#out + 1] = clock_us() - began
return out
