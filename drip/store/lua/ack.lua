-- ack: the head message was handled; it leaves the queue, and the next message of the
-- drain's batch becomes the head before its handler starts. Sent by the drain without
-- waiting for the reply (read with its next call), so acking costs the drain no wait
-- while a crash still repeats at most the message in hand.
--
-- KEYS: state, stream, replays, events
-- ARGV: queue, token, entry_id, id, started_ms, finished_ms, next_entry_id
-- Returns: 1 if acked (or acked already: a retried call), 0 if the lease is no longer this token's,
--   -1 if another ack must run first (this one was sent again out of order).
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
  -- Not the head: applied before (a call sent again after an outage) if the entry has left the
  -- queue, else sent ahead of an ack that has not run yet (-1: the runner sends both again, in order).
  if string.sub(entry, 1, 2) == "f:" then
    local replayed_id, first = string.sub(entry, 3), redis.call("LINDEX", replays, 0)
    return (first and string.sub(first, 1, #replayed_id + 1) == replayed_id .. "\n") and -1 or 1
  end
  return #redis.call("XRANGE", stream, entry, entry) == 0 and 1 or -1
end
remove_acked(stream, replays, entry)
done_event(events, id, queue, s[3], started, finished)
redis.call("HSET", state, STATE.head, next_entry, STATE.attempt, 1)
return 1
