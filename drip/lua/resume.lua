-- resume: hand out a paused queue's messages again.
--
-- KEYS: state, stream, front, ready, paused
-- ARGV: queue, now_ms, wake_channel
-- Returns: 1 if the queue was paused, else 0.
--
-- Invariant: a resumed queue with messages and no lease gets back in line.
local state, stream, front, ready, paused = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local queue, now, channel = ARGV[1], ARGV[2], ARGV[3]
local was = redis.call("SREM", paused, queue)
redis.call("HDEL", state, "paused")
if redis.call("HEXISTS", state, "tok") == 0 and redis.call("XLEN", stream) + redis.call("LLEN", front) > 0 then
  redis.call("ZADD", ready, "NX", now, queue)
  redis.call("PUBLISH", channel, "q")
end
return was
