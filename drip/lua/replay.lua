-- replay: put dead letters back into their queue, at its head (before every
-- waiting message) or at its tail.
--
-- KEYS: dead, dead_index, state, stream, front, ready, events
-- ARGV: queue, where ("head" | "tail"), now_ms, wake_channel, then message ids (all of `queue`)
-- Returns: how many were replayed (ids no longer dead are skipped).
--
-- Invariants: a replayed message keeps its id, payload and times, starts its
-- attempts afresh, and leaves the dead letters in the same call that puts it
-- back; replayed to the head, messages keep the order they are given in.
local dead, dead_index, state, stream, front, ready, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  KEYS[7]
local queue, where, now, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local replayed = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local dead_id = redis.call("HGET", dead_index, id)
  local entries = dead_id and redis.call("XRANGE", dead, dead_id, dead_id) or {}
  if #entries > 0 then
    local f = {}
    for j = 1, #entries[1][2], 2 do
      f[entries[1][2][j]] = entries[1][2][j + 1]
    end
    if where == "head" then
      redis.call("RPUSH", front, id .. "\n" .. f["e"] .. "\n" .. f["r"] .. "\n" .. f["p"])
    else
      redis.call("XADD", stream, "*", "id", id, "p", f["p"], "e", f["e"], "r", f["r"])
    end
    redis.call("XDEL", dead, dead_id)
    redis.call("HDEL", dead_index, id)
    redis.call("XADD", events, "*", "k", "replayed", "id", id, "q", queue)
    replayed = replayed + 1
  end
end
if replayed > 0 and redis.call("HEXISTS", state, "tok") == 0 and redis.call("HGET", state, "paused") ~= "1" then
  redis.call("ZADD", ready, "NX", now, queue)
  redis.call("PUBLISH", channel, "q")
end
return replayed
