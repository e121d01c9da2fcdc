-- skip: an operator sends a queue's head message to the dead letters so the queue goes on
-- ("Skip head": a poison message that blocks it, or one nobody wants handled any more).
--
-- KEYS: state, stream, replays, ready, events, dead, dead_index, paused
-- ARGV: queue, error (who skipped it, shown with the dead letter), wake_channel
-- Returns: {REPLY.held, holder} (a lease is out: nothing changed) | {REPLY.empty} | {REPLY.dead, id}
-- Layout (fields, events, wake codes): drip/core/layout.py.
--
-- Invariants: never while a lease is out (a running handler's message is not taken from
-- under it: the operator pauses the queue and waits for its holder to release it); the
-- dead letter keeps the message whole and is indexed by id; the queue's next message is
-- in line at once unless the queue is paused.
local queue, err = ARGV[1], ARGV[2]
local state, stream, replays, ready, events, dead, dead_index, paused =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local now = now_ms()

if redis.call("HEXISTS", state, STATE.token) == 1 then
  return {REPLY.held, redis.call("HGET", state, STATE.holder) or ""}
end
local id, payload, enqueued, run_at
local replay = redis.call("LPOP", replays)
if replay then
  id, enqueued, run_at, payload = read_replay(replay)
else
  local first = redis.call("XRANGE", stream, "-", "+", "COUNT", 1)[1]
  if not first then
    return {REPLY.empty}
  end
  local f = fields_of(first[2])
  id, payload, enqueued, run_at = f[ENTRY.id], f[ENTRY.payload], f[ENTRY.enqueued], f[ENTRY.run_at]
  redis.call("XDEL", stream, first[1])
end
local attempts = tonumber(redis.call("HGET", state, STATE.attempt) or "0")
local dead_id = redis.call("XADD", dead, "*", DEAD.id, id, DEAD.queue, queue, DEAD.payload, payload,
  DEAD.enqueued, enqueued, DEAD.run_at, run_at, DEAD.attempts, attempts, DEAD.error, err, DEAD.failed_at, now)
redis.call("HSET", dead_index, id, dead_id)
redis.call("HDEL", state, STATE.head, STATE.attempt, STATE.waiting)
redis.call("XADD", events, "*", EVENT.kind, KIND.dead, EVENT.id, id, EVENT.queue, queue, EVENT.attempts, attempts,
  EVENT.error, err, EVENT.finished, now)
if redis.call("XLEN", stream) + redis.call("LLEN", replays) == 0 then
  redis.call("ZREM", ready, queue)
elseif redis.call("SISMEMBER", paused, queue) == 0 then
  redis.call("ZADD", ready, now, queue)
  redis.call("PUBLISH", ARGV[3], WAKE.line)
end
return {REPLY.dead, id}
