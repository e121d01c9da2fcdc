-- wake_deferred: bring every queue waiting in line for a later time (a deferral, a
-- retry's backoff) forward to now, so its handler looks again at once (after the
-- business-hours clock was moved).
--
-- KEYS: ready
-- ARGV: now_ms, wake_channel
-- Returns: how many queues were brought forward.
-- Layout: drip/core/layout.py.
local waiting = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. ARGV[1], "+inf")
for _, queue in ipairs(waiting) do
  redis.call("ZADD", KEYS[1], ARGV[1], queue)
end
if #waiting > 0 then
  redis.call("PUBLISH", ARGV[2], WAKE.line)
end
return #waiting
