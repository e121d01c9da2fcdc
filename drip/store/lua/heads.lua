#!lua flags=no-writes,allow-cross-slot-keys
-- heads: the queues that have waited longest in line, in the shards given.
--
-- KEYS: ready of each shard (all 16 in one call on a standalone Redis; one per call on a
--       cluster, where a script touches one slot)
-- ARGV: how many queues at most
-- Returns: {queue_1, since_1, queue_2, since_2, ...}, oldest first: of the shards' lines (the
--   first two queues of each), the queues whose place has come (since <= now on Redis's clock),
--   at most that many. On a cluster the caller merges the replies of its calls.
--
-- Read-only: a running drain then claims one of them through grant.lua, which re-checks
-- everything, so a queue another drain took meanwhile is simply not granted. One call here
-- replaces a read per shard (replies for the client to parse per look at the line). Two per
-- shard: each member a script reads costs Redis as much as a command.
-- Sorted here: the client then parses a handful of entries, not two per shard.
local now, most = now_ms(), tonumber(ARGV[1])
local found = {}
for i = 1, #KEYS do
  local rows = redis.call("ZRANGE", KEYS[i], 0, 1, "WITHSCORES")
  for j = 1, #rows, 2 do
    local since = tonumber(rows[j + 1])
    if since <= now then
      found[#found + 1] = {since, rows[j], rows[j + 1]}
    end
  end
end
table.sort(found, function(a, b) return a[1] < b[1] end)
local reply = {}
for i = 1, math.min(most, #found) do
  reply[#reply + 1] = found[i][2]
  reply[#reply + 1] = found[i][3]
end
return reply
