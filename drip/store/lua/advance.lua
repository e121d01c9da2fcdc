-- advance: the drain's one call per batch. Acks the messages just handled,
-- then either takes the next batch or releases the lease.
--
-- KEYS: state, stream, leases, ready, events, replays, in_transit
-- ARGV: queue, token, now_ms, ttl_ms, worker, take (how many to take; "0"
--       releases), wake_channel, then for each acked message, in queue order:
--       entry_id, id, started_ms, finished_ms
-- Returns: {REPLY.lost} | {REPLY.released, remaining} |
--          {REPLY.messages, then per message the fields of layout.TAKEN:
--           entry_id, id, payload, enqueued_ms, run_at_ms, attempt}
-- Layout (fields, events, wake codes): drip/core/layout.py.
--
-- The next messages are the replay list's (messages replayed to the head of the
-- queue, entry ids "f:<id>") if any, then the stream's, from its head.
--
-- Invariants: only the lease holder (token) changes the queue (fencing: a
-- stalled holder whose lease was reclaimed cannot ack); a message leaves the
-- queue only when acked (or dead-lettered), so the head is always the next
-- message to handle or the first one a dead holder left unacked; the head's
-- attempt count lives here, bumped as it is handed out, so it survives crashes
-- of the process running it. The rest of a batch counts as attempt 1: when a
-- holder dies with a batch in hand, reclaim puts that many messages in recovery,
-- and they are then handed out one at a time, so a message that kills its
-- process every time is counted as the head and ends in the dead letters. A
-- paused queue hands out nothing.
local queue, token, now, ttl, worker = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local take, channel = tonumber(ARGV[6]), ARGV[7]
local state, stream, leases, ready, events, replays, in_transit =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local FIRST_ACK = 8

-- The state's fields this script reads, in one call (each call a script makes costs Redis
-- about as much as a command from a client). None of them is changed behind this script's
-- back while it runs, so the local copies below stay true as the script updates them.
local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt, STATE.recovering, STATE.paused,
  STATE.tail)
if s[1] ~= token then
  return {REPLY.lost}
end
local head, attempt, recovering, paused, tail = s[2], s[3], tonumber(s[4]), s[5] == "1", tonumber(s[6] or "0")
redis.call("SREM", in_transit, queue)  -- its drain has started (a no-op after the first step)

local acks = (#ARGV - FIRST_ACK + 1) / 4
local head_done = false  -- the head was acked: its fields go, unless a new head replaces them
if acks > 0 and head == ARGV[FIRST_ACK] then
  local last_of_stream
  for i = 0, acks - 1 do
    local at = FIRST_ACK + 4 * i
    local entry = ARGV[at]
    if string.sub(entry, 1, 2) == "f:" then
      redis.call("LPOP", replays)
    else
      last_of_stream = entry
    end
    redis.call("XADD", events, "*", EVENT.kind, KIND.done, EVENT.id, ARGV[at + 1], EVENT.queue, queue,
      EVENT.attempts, i == 0 and attempt or "1", EVENT.started, ARGV[at + 2], EVENT.finished, ARGV[at + 3])
  end
  if last_of_stream then
    -- The acked entries are the oldest of the stream (entries leave it only from its head), so
    -- trimming below the one after the last acked removes exactly them, far cheaper than XDEL.
    local dash = string.find(last_of_stream, "-", 1, true)
    local next_id = string.sub(last_of_stream, 1, dash)
      .. string.format("%.0f", tonumber(string.sub(last_of_stream, dash + 1)) + 1)
    redis.call("XTRIM", stream, "MINID", next_id)
  end
  head, head_done = false, true
  if recovering then
    if recovering <= acks then
      redis.call("HDEL", state, STATE.recovering)
      recovering = nil
    else
      recovering = recovering - acks
      redis.call("HSET", state, STATE.recovering, recovering)
    end
  end
end

if take > 0 and not paused then
  if recovering then
    take = 1
  end
  local reply = {REPLY.messages}
  local count = 0
  for _, replayed in ipairs(redis.call("LRANGE", replays, 0, take - 1)) do
    local id, enqueued, run_at, payload = read_replay(replayed)
    reply[#reply + 1] = "f:" .. id
    reply[#reply + 1] = id
    reply[#reply + 1] = payload
    reply[#reply + 1] = enqueued
    reply[#reply + 1] = run_at
    reply[#reply + 1] = 1
    count = count + 1
  end
  if count < take then
    for _, entry in ipairs(redis.call("XRANGE", stream, "-", "+", "COUNT", take - count)) do
      local f = fields_of(entry[2])
      reply[#reply + 1] = entry[1]
      reply[#reply + 1] = f[ENTRY.id]
      reply[#reply + 1] = f[ENTRY.payload]
      reply[#reply + 1] = f[ENTRY.enqueued]
      reply[#reply + 1] = f[ENTRY.run_at]
      reply[#reply + 1] = 1
      count = count + 1
    end
  end
  if count > 0 then
    if head == reply[2] then
      reply[7] = redis.call("HINCRBY", state, STATE.attempt, 1)
      redis.call("HSET", state, STATE.expires, now + ttl, STATE.holder, worker, STATE.taken, count)
    else
      redis.call("HSET", state, STATE.head, reply[2], STATE.attempt, 1, STATE.expires, now + ttl,
        STATE.holder, worker, STATE.taken, count)
    end
    redis.call("ZADD", leases, "XX", now + ttl, queue)
    return reply
  end
end

-- Release. The head's attempt count stays if it is unfinished (shutdown in
-- the middle of a retry), so the next holder continues the count.
local gone = {STATE.token, STATE.expires, STATE.holder, STATE.taken}
if head_done then
  gone[#gone + 1], gone[#gone + 2] = STATE.head, STATE.attempt
end
redis.call("ZREM", leases, queue)
local remaining = redis.call("XLEN", stream) + redis.call("LLEN", replays)
if remaining > 0 and not paused then
  redis.call("ZADD", ready, "NX", now, queue)
  redis.call("PUBLISH", channel, WAKE.line_one .. queue)  -- back in line
elseif remaining == 0 then
  if recovering then
    gone[#gone + 1] = STATE.recovering
  end
  if tail <= now then
    gone[#gone + 1] = STATE.tail  -- an idle queue keeps no state (its hash goes with its last field)
  end
end
redis.call("HDEL", state, unpack(gone))
return {REPLY.released, remaining}
