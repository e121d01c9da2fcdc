-- resume: hand out a paused queue's messages again.
--
-- KEYS: state, stream, replays, ready, paused
-- ARGV: queue, wake_channel
-- Returns: 1 if the queue was paused, else 0.
-- Layout: drip/core/layout.py.
--
-- Invariant: a resumed queue with messages and no lease gets back in line.
local state, stream, replays, ready, paused = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local queue, channel = ARGV[1], ARGV[2]
local was = redis.call("SREM", paused, queue)
redis.call("HDEL", state, STATE.paused, STATE.waiting)  -- a paused queue waits for nothing but this
if redis.call("HEXISTS", state, STATE.token) == 0 and redis.call("XLEN", stream) + redis.call("LLEN", replays) > 0 then
  redis.call("ZADD", ready, "NX", now_ms(), queue)
  redis.call("PUBLISH", channel, WAKE.line)
end
return was
