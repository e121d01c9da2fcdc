-- cancel: remove a scheduled message before it is promoted.
--
-- KEYS: scheduled_ids, delayed, bodies, due, events, cancelled
-- ARGV: id, queue
-- Returns: 1 if cancelled, 0 if it is no longer scheduled (promoted, cancelled, or unknown).
-- Layout: drip/core/layout.py.
--
-- Invariants: the other messages of the queue keep their run_at (the tail is not
-- touched); the due index keeps the queue's earliest remaining run_at; the id is
-- remembered as cancelled for an hour (the history may not have it yet).
local ids, delayed, bodies, due, events, cancelled = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, queue = ARGV[1], ARGV[2]
local where = redis.call("HGET", ids, id)
if not where or string.sub(where, 1, #queue + 1) ~= queue .. "\n" then
  return 0
end
local member = string.sub(where, #queue + 2)
if redis.call("ZREM", delayed, member) == 0 then
  return 0
end
redis.call("HDEL", bodies, member)
redis.call("HDEL", ids, id)
index_due(delayed, due, queue)
local now = now_ms()
redis.call("XADD", events, "*", EVENT.kind, KIND.cancelled, EVENT.id, id, EVENT.queue, queue, EVENT.finished, now)
redis.call("ZADD", cancelled, now, id)
redis.call("ZREMRANGEBYSCORE", cancelled, "-inf", now - 3600000)
return 1
