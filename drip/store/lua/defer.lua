-- defer: a handler said "not now" (a rate limit, a closed window): give the head
-- message back its attempt and release the queue for `delay_ms` (Redis's clock).
--
-- KEYS: state, leases, ready, stream, replays, events, acks
-- ARGV: queue, token, entry_id, delay_ms, wake_channel, why (shown while it waits)
-- Returns: 1, or 0 if the lease is no longer this token's.
-- Layout: drip/core/layout.py.
--
-- Invariants: fenced by the lease token; the message stays at the head, its
-- attempt count as it was before this hand-out; the queue is back in line with
-- now + delay as its place, which no grant comes before; the acks the drain sent ahead (mark.lua)
-- are applied first, so the head is the deferred message.
local state, leases, ready, stream, replays, events, acks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  KEYS[7]
local queue, token, entry_id, delay, channel, why = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt)
if s[1] ~= token or apply_acks(acks, state, stream, replays, events, queue, s[2], s[3]) ~= entry_id then
  return 0
end
if redis.call("HINCRBY", state, STATE.attempt, -1) <= 0 then
  redis.call("HDEL", state, STATE.head, STATE.attempt)
end
redis.call("HDEL", state, STATE.token, STATE.expires, STATE.holder)
redis.call("HSET", state, STATE.waiting, why)
redis.call("ZREM", leases, queue)
redis.call("ZADD", ready, now_ms() + delay, queue)
redis.call("PUBLISH", channel, WAKE.line)
return 1
