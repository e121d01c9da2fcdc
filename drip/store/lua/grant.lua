-- grant: the supervisor leases queues of one shard to drains idle in the broker. Each grant is
-- marked in transit until its drain's first step (a running drain leases a queue for itself
-- with advance.lua's claim instead).
--
-- KEYS: ready, leases, in_transit, then state_i for each queue
-- ARGV: ttl_ms, then queue_i, token_i for each queue
-- Returns: the queues granted (a queue that left the ready set or got a
-- lease since the supervisor read it is skipped, and so is one whose place in
-- line is still in the future: it waits for a retry's backoff).
-- Layout: drip/core/layout.py.
--
-- Invariant: a queue is in at most one of ready and leases; a granted queue
-- holds exactly one token, which every later change to it must present; places in
-- line and lease expiry are on Redis's clock.
local ttl = tonumber(ARGV[1])
local now = now_ms()
local ready, leases, in_transit = KEYS[1], KEYS[2], KEYS[3]
local granted = {}
for i = 4, #KEYS do
  local queue, token = ARGV[2 * i - 6], ARGV[2 * i - 5]
  local state = KEYS[i]
  local since = redis.call("ZSCORE", ready, queue)
  if since and tonumber(since) <= now and redis.call("HEXISTS", state, STATE.token) == 0 then
    redis.call("ZREM", ready, queue)
    redis.call("ZADD", leases, now + ttl, queue)
    redis.call("HSET", state, STATE.token, token, STATE.expires, now + ttl)
    redis.call("HDEL", state, STATE.waiting)
    redis.call("SADD", in_transit, queue)
    granted[#granted + 1] = queue
  end
end
return granted
