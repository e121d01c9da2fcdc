#!lua flags=no-writes,allow-cross-slot-keys
-- heads: the queues that have waited longest in line, across every shard, in one call.
--
-- KEYS: ready of each shard
-- ARGV: limit
-- Returns: {more, queue_1, ..., queue_k}: up to `limit` queues whose place in line has come
--   (score <= now on Redis's clock), oldest first, taken from the first two of each shard's
--   line (queue_1 is always the oldest of all; the others are what a drain that lost the race
--   for it tries next); more is 1 when other queues were due in line beside queue_1, else 0.
--
-- Layout: drip/core/layout.py.
--
-- Read-only: a running drain then claims one of them through grant.lua, which re-checks
-- everything, so a queue another drain took meanwhile is simply not granted. One call
-- here replaces a read per shard (16 replies for the client to parse per look at the line).
-- Two per shard, not `limit`: each member a script reads costs Redis as much as a command.
local now = now_ms()
local limit = tonumber(ARGV[1])
local found = {}
for i = 1, #KEYS do
  local rows = redis.call("ZRANGE", KEYS[i], 0, 1, "WITHSCORES")
  for j = 1, #rows, 2 do
    local since = tonumber(rows[j + 1])
    if since <= now then
      found[#found + 1] = {since, rows[j]}
    end
  end
end
table.sort(found, function(a, b) return a[1] < b[1] end)
local reply = {#found > 1 and 1 or 0}
for i = 1, math.min(limit, #found) do
  reply[#reply + 1] = found[i][2]
end
return reply
