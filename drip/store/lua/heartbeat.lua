-- heartbeat: a worker process says it is alive, on Redis's clock.
--
-- KEYS: workers
-- ARGV: member ("host:pid:threads"), ttl_ms, wake_channel
-- Returns: 1 when the process just joined (the supervisor is woken to grant to it), else 0.
-- Layout (wake codes): drip/core/layout.py.
--
-- Invariant: a member's score is when it stops counting as alive unless it beats again,
-- so every reader judges liveness by the same clock, whatever the worker's clock says.
local joined = redis.call("ZADD", KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
if joined == 1 then
  redis.call("PUBLISH", ARGV[3], WAKE.joined)
end
return joined
