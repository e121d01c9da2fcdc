-- fail: the head message's attempt failed (or its process died during every
-- allowed attempt). Either release the queue until the retry is due, or, after
-- the last attempt, move the message to the dead letters so the queue goes on
-- (or pauses, when its route says on_dead = "pause").
--
-- KEYS: state, stream, replays, leases, ready, events, dead, dead_index, paused, acks
-- ARGV: queue, token, entry_id, id, error, max_attempts, started_ms, finished_ms,
--       not_run ("1": this hand-out did not run the handler, it only found the count spent),
--       on_dead ("continue" | "pause"), retry_delay_ms, wake_channel, why (shown while it waits)
-- Returns: {REPLY.lost} | {REPLY.retry, attempts} | {REPLY.dead, attempts}
-- Layout (fields, events, wake codes): drip/core/layout.py.
--
-- Invariants: fenced by the lease token like every change to a queue; a retry
-- keeps the message at the head (the queue waits, other queues go on) without
-- holding a slot through the backoff: the queue is back in line with its place
-- at the retry's time on Redis's clock, which no grant comes before; a dead letter
-- keeps the message whole (payload, times, attempts, last error) and is indexed by id; the acks the
-- drain sent ahead (mark.lua) are applied first, so the head is the failing message.
local queue, token, entry_id, id, err = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_attempts, started, finished = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local not_run, on_dead, retry_delay, channel, why = ARGV[9], ARGV[10], tonumber(ARGV[11]), ARGV[12], ARGV[13]
local now = now_ms()
local state, stream, replays, leases, ready, events, dead, dead_index, paused, acks =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]

local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt)
if s[1] ~= token then
  return {REPLY.lost}
end
local head, attempt = apply_acks(acks, state, stream, replays, events, queue, s[2], s[3])
if head ~= entry_id then
  return {REPLY.lost}
end
local attempts = tonumber(attempt)
if not_run == "1" then
  attempts = attempts - 1
  redis.call("HSET", state, STATE.attempt, attempts)
end

local function release(score)
  redis.call("HDEL", state, STATE.token, STATE.expires, STATE.holder)
  redis.call("ZREM", leases, queue)
  if score then
    redis.call("ZADD", ready, score, queue)
  end
  redis.call("PUBLISH", channel, WAKE.line)
end

-- History event of this outcome; an attempt that never ran has no start or finish to record.
local function event(kind)
  local fields = {EVENT.kind, kind, EVENT.id, id, EVENT.queue, queue, EVENT.attempts, attempts, EVENT.error, err}
  if not_run ~= "1" then
    table.insert(fields, EVENT.started) table.insert(fields, started)
    table.insert(fields, EVENT.finished) table.insert(fields, finished)
  elseif kind == KIND.dead then
    table.insert(fields, EVENT.finished) table.insert(fields, now)
  end
  redis.call("XADD", events, "*", unpack(fields))
end

if attempts < max_attempts then
  event(KIND.failed)
  redis.call("HSET", state, STATE.waiting, why)
  release(now + retry_delay)
  return {REPLY.retry, attempts}
end

local payload, enqueued, run_at
if string.sub(entry_id, 1, 2) == "f:" then
  local _
  _, enqueued, run_at, payload = read_replay(redis.call("LPOP", replays))
else
  local f = fields_of(redis.call("XRANGE", stream, entry_id, entry_id)[1][2])
  payload, enqueued, run_at = f[ENTRY.payload], f[ENTRY.enqueued], f[ENTRY.run_at]
  redis.call("XDEL", stream, entry_id)
end
local dead_id = redis.call("XADD", dead, "*", DEAD.id, id, DEAD.queue, queue, DEAD.payload, payload,
  DEAD.enqueued, enqueued, DEAD.run_at, run_at, DEAD.attempts, attempts, DEAD.error, err, DEAD.failed_at, now)
redis.call("HSET", dead_index, id, dead_id)
redis.call("HDEL", state, STATE.head, STATE.attempt)
event(KIND.dead)
if on_dead == "pause" then
  -- Shown by the console as "blocked by a dead head" (an operator's pause leaves no reason).
  redis.call("HSET", state, STATE.paused, "1", STATE.waiting, "dead head " .. id .. ": " .. err)
  redis.call("SADD", paused, queue)
  release(nil)
end
return {REPLY.dead, attempts}
