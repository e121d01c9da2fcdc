-- defer: a handler said "not now" (a rate limit, a closed window): give the head
-- message back its attempt and release the queue until `ready_at`.
--
-- KEYS: state, leases, ready
-- ARGV: queue, token, entry_id, ready_at_ms, wake_channel
-- Returns: 1, or 0 if the lease is no longer this token's.
-- Layout: drip/core/layout.py.
--
-- Invariants: fenced by the lease token; the message stays at the head, its
-- attempt count as it was before this hand-out; the queue is back in line with
-- ready_at as its place, which the supervisor does not grant before.
local state, leases, ready = KEYS[1], KEYS[2], KEYS[3]
local queue, token, entry_id, ready_at, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call("HGET", state, STATE.token) ~= token or redis.call("HGET", state, STATE.head) ~= entry_id then
  return 0
end
if redis.call("HINCRBY", state, STATE.attempt, -1) <= 0 then
  redis.call("HDEL", state, STATE.head, STATE.attempt)
end
redis.call("HDEL", state, STATE.token, STATE.expires, STATE.holder, STATE.taken)
redis.call("ZREM", leases, queue)
redis.call("ZADD", ready, ready_at, queue)
redis.call("PUBLISH", channel, WAKE.line)
return 1
