-- reclaim: end leases that expired (their holder died or stalled) and put
-- their queues back in line.
--
-- KEYS: ready, leases, handed, then state_i, stream_i, front_i for each queue
-- ARGV: now_ms, wake_channel, then queue_i for each queue
-- Returns: the queues reclaimed (a lease renewed since it was read is kept).
--
-- Invariant: a queue with messages is never left without lease and out of
-- line; the head's attempt count is kept, so the next holder counts on; the
-- batch the dead holder had in hand is marked "care" (see advance.lua), so its
-- messages are handed out one at a time and each one's deaths are counted.
local now, channel = tonumber(ARGV[1]), ARGV[2]
local ready, leases, handed = KEYS[1], KEYS[2], KEYS[3]
local reclaimed = {}
for i = 3, #ARGV do
  local queue = ARGV[i]
  local state, stream, front = KEYS[3 * i - 5], KEYS[3 * i - 4], KEYS[3 * i - 3]
  local expiry = redis.call("ZSCORE", leases, queue)
  if expiry and tonumber(expiry) <= now then
    redis.call("ZREM", leases, queue)
    redis.call("SREM", handed, queue)
    if redis.call("HEXISTS", state, "head") == 1 then
      local care = tonumber(redis.call("HGET", state, "care") or "0")
      redis.call("HSET", state, "care", math.max(care, tonumber(redis.call("HGET", state, "n") or "1")))
    end
    redis.call("HDEL", state, "tok", "exp", "who", "n")
    if redis.call("XLEN", stream) + redis.call("LLEN", front) > 0 and redis.call("HGET", state, "paused") ~= "1" then
      redis.call("ZADD", ready, "NX", now, queue)
    end
    reclaimed[#reclaimed + 1] = queue
  end
end
if #reclaimed > 0 then
  redis.call("PUBLISH", channel, "x")
end
return reclaimed
