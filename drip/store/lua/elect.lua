-- elect: take or keep the supervisor leader lease.
--
-- KEYS: leader
-- ARGV: token, ttl_ms
-- Returns: 1 if this token leads (newly or still), 0 if another does.
--
-- Invariant: one leader at a time; a leader that stalls past its TTL loses
-- the lease and cannot extend someone else's.
local current = redis.call("GET", KEYS[1])
if current == false then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
