-- reclaim: end leases that expired (their holder died or stalled) and put
-- their queues back in line.
--
-- KEYS: ready, leases, in_transit, events, then state_i, stream_i, replays_i, acks_i for each queue
-- ARGV: wake_channel, then queue_i for each queue
-- Returns: the queues reclaimed (a lease renewed since it was read is kept).
-- Layout: drip/core/layout.py.
--
-- Invariant: a queue with messages is never left without lease and out of line;
-- the head's attempt count is kept, so the next holder counts on (the head is the
-- message the dead holder had in hand, once the acks it sent ahead are applied); expiry is judged on
-- Redis's clock.
local channel = ARGV[1]
local ready, leases, in_transit, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms()
local reclaimed = {}
for i = 2, #ARGV do
  local queue = ARGV[i]
  local state, stream, replays, acks = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local expiry = redis.call("ZSCORE", leases, queue)
  if expiry and tonumber(expiry) <= now then
    local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt)
    if s[1] then
      apply_acks(acks, state, stream, replays, events, queue, s[2], s[3])
    end
    redis.call("ZREM", leases, queue)
    redis.call("SREM", in_transit, queue)
    redis.call("HDEL", state, STATE.token, STATE.expires, STATE.holder)
    if redis.call("XLEN", stream) + redis.call("LLEN", replays) > 0
        and redis.call("HGET", state, STATE.paused) ~= "1" then
      redis.call("ZADD", ready, "NX", now, queue)
    end
    reclaimed[#reclaimed + 1] = queue
  end
end
if #reclaimed > 0 then
  redis.call("PUBLISH", channel, WAKE.reclaimed)
end
return reclaimed
