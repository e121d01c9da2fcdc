-- resign: give up the leader lease at shutdown so a standby takes over at once.
--
-- KEYS: leader
-- ARGV: token
-- Returns: 1 if this token held it and it was removed, else 0.
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
