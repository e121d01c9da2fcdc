-- fail: the head message's attempt failed (or its process died during every
-- allowed attempt). Either release the queue until the retry is due, or, after
-- the last attempt, move the message to the dead letters so the queue goes on
-- (or pauses, when its route says on_dead = "pause").
--
-- KEYS: state, stream, front, leases, ready, events, dead, dead_index, paused
-- ARGV: queue, token, now_ms, entry_id, id, error, max_attempts, started_ms, finished_ms,
--       not_run ("1": this hand-out did not run the handler, it only found the count spent),
--       on_dead ("continue" | "pause"), retry_at_ms, wake_channel
-- Returns: {"lost"} | {"retry", attempts} | {"dead", attempts}
--
-- Invariants: fenced by the lease token like every change to a queue; a retry
-- keeps the message at the head (the queue waits, other queues go on) without
-- holding a slot through the backoff: the queue is back in line with score
-- retry_at, which the supervisor does not grant before; a dead letter keeps the
-- message whole (payload, times, attempts, last error) and is indexed by id.
local queue, token, now, entry_id, id, err = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local max_attempts, started, finished = tonumber(ARGV[7]), ARGV[8], ARGV[9]
local not_run, on_dead, retry_at, channel = ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local state, stream, front, leases, ready, events, dead, dead_index, paused =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]

if redis.call("HGET", state, "tok") ~= token or redis.call("HGET", state, "head") ~= entry_id then
  return {"lost"}
end
local attempts = tonumber(redis.call("HGET", state, "att"))
if not_run == "1" then
  attempts = attempts - 1
  redis.call("HSET", state, "att", attempts)
end

local function release(score)
  redis.call("HDEL", state, "tok", "exp", "who", "n")
  redis.call("ZREM", leases, queue)
  if score then
    redis.call("ZADD", ready, score, queue)
  end
  redis.call("PUBLISH", channel, "q")
end

-- History event of this outcome; an attempt that never ran has no start or finish to record.
local function event(kind)
  local fields = {"k", kind, "id", id, "q", queue, "a", attempts, "x", err}
  if not_run ~= "1" then
    table.insert(fields, "s") table.insert(fields, started)
    table.insert(fields, "f") table.insert(fields, finished)
  elseif kind == "dead" then
    table.insert(fields, "f") table.insert(fields, now)
  end
  redis.call("XADD", events, "*", unpack(fields))
end

if attempts < max_attempts then
  event("failed")
  release(retry_at)
  return {"retry", attempts}
end

local payload, enqueued, run_at
if string.sub(entry_id, 1, 2) == "f:" then
  local replayed = redis.call("LPOP", front)
  local a = string.find(replayed, "\n", 1, true)
  local b = string.find(replayed, "\n", a + 1, true)
  local c = string.find(replayed, "\n", b + 1, true)
  enqueued, run_at, payload = string.sub(replayed, a + 1, b - 1), string.sub(replayed, b + 1, c - 1),
    string.sub(replayed, c + 1)
else
  local entries = redis.call("XRANGE", stream, entry_id, entry_id)
  local f = {}
  for i = 1, #entries[1][2], 2 do
    f[entries[1][2][i]] = entries[1][2][i + 1]
  end
  payload, enqueued, run_at = f["p"], f["e"], f["r"]
  redis.call("XDEL", stream, entry_id)
end
local dead_id = redis.call("XADD", dead, "*", "id", id, "q", queue, "p", payload, "e", enqueued, "r", run_at,
  "a", attempts, "x", err, "t", now)
redis.call("HSET", dead_index, id, dead_id)
redis.call("HDEL", state, "head", "att")
local care = tonumber(redis.call("HGET", state, "care") or "0")  -- one of a dead holder's batch settled
if care > 1 then
  redis.call("HSET", state, "care", care - 1)
elseif care == 1 then
  redis.call("HDEL", state, "care")
end
event("dead")
if on_dead == "pause" then
  redis.call("HSET", state, "paused", "1")
  redis.call("SADD", paused, queue)
  release(nil)
end
return {"dead", attempts}
