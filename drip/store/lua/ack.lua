-- ack: the head message was handled; it leaves the queue, and the next message of the
-- drain's batch becomes the head before its handler starts. Sent by the drain without
-- waiting for the reply (read with its next call), so acking costs the drain no wait
-- while a crash still repeats at most the message in hand.
--
-- KEYS: state, stream, replays, events
-- ARGV: queue, token, entry_id, id, started_ms, finished_ms, next_entry_id
-- Returns: 1 if acked (or acked already: a retried call), 0 if the lease is no longer this token's.
-- Layout (fields, events): drip/core/layout.py.
--
-- Invariants: fenced by the lease token; only the head is acked, in queue order; the next
-- message is made the head with a fresh attempt count in the same call, so if its holder
-- dies while it runs, the next holder counts that attempt.
local state, stream, replays, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local queue, token, entry, id, started, finished, next_entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV[6], ARGV[7]
local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt)
if s[1] ~= token then
  return 0
end
if s[2] ~= entry then
  return 1  -- no longer the head: this ack was applied before (a call retried after an outage)
end
remove_acked(stream, replays, entry)
done_event(events, id, queue, s[3], started, finished)
redis.call("HSET", state, STATE.head, next_entry, STATE.attempt, 1)
return 1
