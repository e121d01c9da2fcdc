#!lua flags=no-writes,allow-cross-slot-keys
-- heads: the queues that have waited longest in line, in the shards given.
--
-- KEYS: ready of each shard (all 16 in one call on a standalone Redis; one per call on a
--       cluster, where a script touches one slot)
-- ARGV: none
-- Returns: {queue_1, since_1, queue_2, since_2, ...}: of each shard's line, its first two
--   queues whose place has come (since <= now on Redis's clock). The caller merges the
--   replies of its calls, oldest first.
--
-- Read-only: a running drain then claims one of them through grant.lua, which re-checks
-- everything, so a queue another drain took meanwhile is simply not granted. One call here
-- replaces a read per shard (replies for the client to parse per look at the line). Two per
-- shard: each member a script reads costs Redis as much as a command.
local now = now_ms()
local found = {}
for i = 1, #KEYS do
  local rows = redis.call("ZRANGE", KEYS[i], 0, 1, "WITHSCORES")
  for j = 1, #rows, 2 do
    if tonumber(rows[j + 1]) <= now then
      found[#found + 1] = rows[j]
      found[#found + 1] = rows[j + 1]
    end
  end
end
return found
