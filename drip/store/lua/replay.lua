-- replay: put dead letters back into their queue, at its head (before every
-- waiting message) or at its tail.
--
-- KEYS: dead, dead_index, state, stream, replays, ready, events
-- ARGV: queue, where ("head" | "tail"), wake_channel, then message ids (all of `queue`)
-- Returns: how many were replayed (ids no longer dead are skipped).
-- Layout: drip/core/layout.py.
--
-- Invariants: a replayed message keeps its id, payload and times, starts its
-- attempts afresh, and leaves the dead letters in the same call that puts it
-- back; replayed to the head, messages keep the order they are given in.
local dead, dead_index, state, stream, replays, ready, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6], KEYS[7]
local queue, where, channel = ARGV[1], ARGV[2], ARGV[3]
local replayed = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local dead_id = redis.call("HGET", dead_index, id)
  local entries = dead_id and redis.call("XRANGE", dead, dead_id, dead_id) or {}
  if #entries > 0 then
    local f = fields_of(entries[1][2])
    if where == "head" then
      redis.call("RPUSH", replays, id .. "\n" .. f[DEAD.enqueued] .. "\n" .. f[DEAD.run_at] .. "\n" .. f[DEAD.payload])
    else
      redis.call("XADD", stream, "*", ENTRY.id, id, ENTRY.payload, f[DEAD.payload], ENTRY.enqueued, f[DEAD.enqueued],
        ENTRY.run_at, f[DEAD.run_at])
    end
    redis.call("XDEL", dead, dead_id)
    redis.call("HDEL", dead_index, id)
    redis.call("XADD", events, "*", EVENT.kind, KIND.replayed, EVENT.id, id, EVENT.queue, queue)
    replayed = replayed + 1
  end
end
if replayed > 0 and redis.call("HEXISTS", state, STATE.token) == 0 and redis.call("HGET", state, STATE.paused) ~= "1" then
  redis.call("ZADD", ready, "NX", now_ms(), queue)
  redis.call("PUBLISH", channel, WAKE.line)
end
return replayed
