-- promote: move a queue's scheduled messages whose run_at has come into its stream.
--
-- KEYS: delayed, bodies, stream, state, ready, due, events, scheduled_ids, promoted
-- ARGV: queue, limit, wake_channel
-- Returns: how many messages were moved (at most `limit`; call again while it returns `limit`).
-- Layout: drip/core/layout.py.
--
-- Invariants: messages move in (run_at, arrival) order, each exactly once (a member
-- leaves the delayed set in the same atomic call that adds it to the stream, so two
-- promoters running at once can never both move it); "due" is judged on Redis's clock;
-- afterwards the due index holds the queue's new earliest run_at (or not the queue at
-- all), and a queue with new ready messages and no lease is in line; a promoted id is
-- remembered for an hour, so cancelling it is a conflict rather than an unknown id.
local queue, limit, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local delayed, bodies, stream, state, ready, due, events, ids, promoted =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local now = now_ms()

local rows = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "WITHSCORES", "LIMIT", 0, limit)
local members, message_ids, gone = {}, {}, {}
for i = 1, #rows, 2 do
  local member, run_at = rows[i], rows[i + 1]
  local id = string.sub(member, 17)
  local body = redis.call("HGET", bodies, member)
  local sep = string.find(body, "\n", 1, true)
  redis.call("XADD", stream, "*", ENTRY.id, id, ENTRY.payload, string.sub(body, sep + 1),
    ENTRY.enqueued, string.sub(body, 1, sep - 1), ENTRY.run_at, run_at)
  redis.call("XADD", events, "*", EVENT.kind, KIND.promoted, EVENT.id, id, EVENT.queue, queue)
  members[#members + 1] = member
  message_ids[#message_ids + 1] = id
  gone[#gone + 1], gone[#gone + 2] = now, id
end
if #members == 0 then
  return 0
end
redis.call("ZREM", delayed, unpack(members))
redis.call("HDEL", bodies, unpack(members))
redis.call("HDEL", ids, unpack(message_ids))
redis.call("ZADD", promoted, unpack(gone))
redis.call("ZREMRANGEBYSCORE", promoted, "-inf", now - 3600000)

index_due(delayed, due, queue)
if redis.call("HEXISTS", state, STATE.token) == 0 and redis.call("HGET", state, STATE.paused) ~= "1"
    and redis.call("ZADD", ready, "NX", now, queue) == 1 then
  redis.call("PUBLISH", channel, WAKE.promoted)
end
return #members
