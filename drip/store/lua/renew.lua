-- renew: extend a lease, only for its holder.
--
-- KEYS: state, leases
-- ARGV: queue, token, ttl_ms
-- Returns: 1 if renewed, 0 if the lease is no longer this token's.
-- Layout: drip/core/layout.py.
--
-- Invariant: a stalled holder cannot revive a lease that expired and was
-- granted to someone else (the token check is atomic with the extension); expiry is
-- on Redis's clock, whatever the holder's own clock says.
local queue, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
if redis.call("HGET", KEYS[1], STATE.token) ~= token then
  return 0
end
redis.call("HSET", KEYS[1], STATE.expires, now + ttl)
redis.call("ZADD", KEYS[2], "XX", now + ttl, queue)
return 1
