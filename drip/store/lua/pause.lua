-- pause: stop handing out a queue's messages until it is resumed.
--
-- KEYS: state, ready, paused
-- ARGV: queue
-- Returns: 1 if the queue was not paused before, else 0.
-- Layout: drip/core/layout.py.
--
-- Invariant: a paused queue is not in line, so it is never granted; a drain that
-- holds it when it is paused finishes its current message and releases it.
local state, ready, paused = KEYS[1], KEYS[2], KEYS[3]
local queue = ARGV[1]
redis.call("ZREM", ready, queue)
redis.call("HSET", state, STATE.paused, "1")
return redis.call("SADD", paused, queue)
