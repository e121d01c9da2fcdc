-- promote: move a queue's scheduled messages whose run_at has come into its stream.
--
-- KEYS: delayed, bodies, stream, state, ready, due, events, ids
-- ARGV: queue, limit, wake_channel
-- Returns: how many messages were moved (at most `limit`; call again while it returns `limit`).
--
-- Invariants: messages move in (run_at, arrival) order, each exactly once (a member
-- leaves the delayed set in the same atomic call that adds it to the stream, so two
-- promoters running at once can never both move it); "due" is judged on Redis's clock;
-- afterwards the due index holds the queue's new earliest run_at (or not the queue at
-- all), and a queue with new ready messages and no lease is in line.
local queue, limit, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local delayed, bodies, stream, state, ready, due, events, ids =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local rows = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "WITHSCORES", "LIMIT", 0, limit)
local members, message_ids = {}, {}
for i = 1, #rows, 2 do
  local member, run_at = rows[i], rows[i + 1]
  local id = string.sub(member, 17)
  local body = redis.call("HGET", bodies, member)
  local sep = string.find(body, "\n", 1, true)
  redis.call("XADD", stream, "*", "id", id, "p", string.sub(body, sep + 1), "e", string.sub(body, 1, sep - 1),
    "r", run_at)
  redis.call("XADD", events, "*", "k", "promoted", "id", id, "q", queue)
  members[#members + 1] = member
  message_ids[#message_ids + 1] = id
end
if #members == 0 then
  return 0
end
redis.call("ZREM", delayed, unpack(members))
redis.call("HDEL", bodies, unpack(members))
redis.call("HDEL", ids, unpack(message_ids))

local first = redis.call("ZRANGE", delayed, 0, 0, "WITHSCORES")
if #first > 0 then
  redis.call("ZADD", due, first[2], queue)
else
  redis.call("ZREM", due, queue)
end
if redis.call("HEXISTS", state, "tok") == 0 and redis.call("HGET", state, "paused") ~= "1"
    and redis.call("ZADD", ready, "NX", now, queue) == 1 then
  redis.call("PUBLISH", channel, "p")
end
return #members
