-- ack: the head message was handled; it leaves the queue, and the next message of the drain's batch
-- becomes the head before its handler starts, with the acks sent ahead (mark.lua) applied first. The
-- drain sends a mark per message and this when its marks have waited long enough (slow handlers), so
-- history and the console never lag a batch behind. Sent without waiting for the reply (read with the
-- drain's next call), so acking costs the drain no wait while a crash still repeats at most the message
-- in hand.
--
-- KEYS: state, stream, replays, events, acks
-- ARGV: queue, token, mark (as mark.lua's: this message's)
-- Returns: 1, or 0 if the lease is no longer this token's.
-- Layout (fields, events): drip/core/layout.py.
--
-- Invariants: fenced by the lease token; only the head is acked, in queue order; the next message is
-- made the head with a fresh attempt count in the same call, so if its holder dies while it runs, the
-- next holder counts that attempt; a call sent again (after a broken connection) changes nothing.
local state, stream, replays, events, acks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local queue, token = ARGV[1], ARGV[2]
local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt)
if s[1] ~= token then
  return 0
end
redis.call("RPUSH", acks, ARGV[3])
apply_acks(acks, state, stream, replays, events, queue, s[2], s[3])
return 1
