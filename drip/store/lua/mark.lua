-- mark: acks a drain sends ahead, one per message handled, each written before the next handler
-- starts and without waiting for its reply (read with the drain's next call). A mark is one list push,
-- a fraction of what applying it costs (ack.lua's work: the entry out of the queue, its done event, the
-- next message made the head); the next script that reads the queue's head (advance, ack, fail, defer,
-- reclaim) applies the waiting marks first (prelude's apply_acks), so a crash still repeats at most the
-- message in hand: what was handled is in Redis's hands before the next handler starts.
--
-- KEYS: state, acks
-- ARGV: token, mark "<entry_id>\n<id>\n<started_ms>\n<finished_ms>\n<next_entry_id>"
-- Returns: 1, or 0 if the lease is no longer this token's (nothing kept: the next holder starts from the head).
-- Layout: drip/core/layout.py.
--
-- Invariants: fenced by the lease token, so a holder whose lease is gone leaves no marks behind, and
-- every script that ends a lease applies its marks first: the marks waiting are the lease's own. A
-- mark sent twice (again after a broken connection) matches no head the second time and is dropped.
local state, acks = KEYS[1], KEYS[2]
if redis.call("HGET", state, STATE.token) ~= ARGV[1] then
  return 0
end
redis.call("RPUSH", acks, ARGV[2])
return 1
