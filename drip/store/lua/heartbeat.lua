-- heartbeat: a worker process says it is alive, on Redis's clock, and, when asked, states which of
-- its threads are busy.
--
-- KEYS: workers, busy_threads
-- ARGV: member ("host:pid:threads"), ttl_ms, wake_channel, correct ("1": the process's busy threads
--       are exactly ARGV[5..], "0": leave them), busy thread names...
-- Returns: 1 when the process just joined (the supervisor is woken to grant to it), else 0.
-- Layout (wake codes): drip/core/layout.py.
--
-- Invariant: a member's score is when it stops counting as alive unless it beats again,
-- so every reader judges liveness by the same clock, whatever the worker's clock says.
-- A thread marks itself busy and idle with single writes; one that failed (Redis away, a
-- failover) would leave a thread counted busy for as long as its process lives, and a pool
-- whose threads all count busy is granted nothing. The process then asks its next beat to
-- correct its own threads' marks (never another process's).
local joined = redis.call("ZADD", KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
if joined == 1 then
  redis.call("PUBLISH", ARGV[3], WAKE.joined)
end
if ARGV[4] == "1" then
  local busy = {}
  for i = 5, #ARGV do
    busy[ARGV[i]] = true
    redis.call("HSET", KEYS[2], ARGV[i], 1)
  end
  local prefix = ARGV[1] .. "/"
  local freed = false
  for _, thread in ipairs(redis.call("HKEYS", KEYS[2])) do
    if not busy[thread] and string.sub(thread, 1, #prefix) == prefix then
      redis.call("HDEL", KEYS[2], thread)
      freed = true
    end
  end
  if freed then
    redis.call("PUBLISH", ARGV[3], WAKE.freed)
  end
end
return joined
