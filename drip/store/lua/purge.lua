-- purge: delete dead letters for good.
--
-- KEYS: dead, dead_index
-- ARGV: message ids
-- Returns: how many were deleted.
--
-- Invariant: a dead letter and its index entry go together.
local dead, dead_index = KEYS[1], KEYS[2]
local purged = 0
for i = 1, #ARGV do
  local dead_id = redis.call("HGET", dead_index, ARGV[i])
  if dead_id then
    purged = purged + redis.call("XDEL", dead, dead_id)
    redis.call("HDEL", dead_index, ARGV[i])
  end
end
return purged
