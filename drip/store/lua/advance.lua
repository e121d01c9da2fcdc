-- advance: a drain's step between batches. Acks the message just handled (if any), then
-- either takes the next batch or releases the lease. With claim "1" it is a running drain's
-- first step on a queue it leases for itself (a standby signal named it, or it waited
-- longest in line): the lease is taken as grant.lua takes it, then the first batch, in one call.
--
-- KEYS: state, stream, leases, ready, events, replays, in_transit, acks
-- ARGV: queue, token, ttl_ms, worker, take (how many to take; "0" releases), wake_channel,
--       claim ("1": lease the queue first; "0": the lease is the caller's already),
--       then, for the message just handled (optional): entry_id, id, started_ms, finished_ms
-- Returns: {REPLY.lost} (the lease is not this token's; for a claim: the queue left the line, another
--          drain leased it, or its place is still in the future) | {REPLY.released, remaining} |
--          {REPLY.messages, then per message the fields of layout.TAKEN:
--           entry_id, id, payload, enqueued_ms, run_at_ms, attempt}
-- Layout (fields, events, wake codes): drip/core/layout.py.
--
-- The next messages are the replay list's (messages replayed to the head of the
-- queue, entry ids "f:<id>") if any, then the stream's, from its head. The first of
-- them becomes the head, its attempt counted; the others become the head one by one
-- as the message before each is acked (mark.lua, ack.lua), before their handlers start; the
-- acks sent ahead are applied here first.
--
-- Invariants: only the lease holder (token) changes the queue (fencing: a stalled
-- holder whose lease was reclaimed cannot ack); a message leaves the queue only when
-- acked (or dead-lettered), so the head is always the message in hand or the next to
-- handle; the head's attempt count lives here, so it survives crashes of the process
-- running it; lease expiry is on Redis's clock. A paused queue hands out nothing. A queue
-- is in at most one of ready and leases, and a claim leases only a queue in line whose
-- place has come, as grant.lua does.
local queue, token, ttl, worker = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local take, channel, claim = tonumber(ARGV[5]), ARGV[6], ARGV[7] == "1"
local acked_entry, acked_id, started, finished = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local state, stream, leases, ready, events, replays, in_transit, acks =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local now = now_ms()

-- The state's fields this script reads, in one call (each call a script makes costs Redis
-- about as much as a command from a client). None of them is changed behind this script's
-- back while it runs, so the local copies below stay true as the script updates them.
local s = redis.call("HMGET", state, STATE.token, STATE.head, STATE.attempt, STATE.paused, STATE.tail)
if claim then
  local since = redis.call("ZSCORE", ready, queue)
  if s[1] or not since or tonumber(since) > now then
    return {REPLY.lost}
  end
  redis.call("ZREM", ready, queue)
  redis.call("ZADD", leases, now + ttl, queue)
  redis.call("HSET", state, STATE.token, token)  -- its expiry and holder are written with the batch below
  redis.call("HDEL", state, STATE.waiting)
  s[1] = token
end
if s[1] ~= token then
  return {REPLY.lost}
end
local paused, tail = s[4] == "1", tonumber(s[5] or "0")
local head, attempt = apply_acks(acks, state, stream, replays, events, queue, s[2], s[3])
if not claim then
  redis.call("SREM", in_transit, queue)  -- its drain has started (a no-op after the first step)
end

-- An ack whose entry is no longer the head was applied already (this call is a retry).
local head_done = false  -- the head was acked: its fields go, unless a new head replaces them
if acked_entry and head == acked_entry then
  remove_acked(stream, replays, acked_entry)
  done_event(events, acked_id, queue, attempt, started, finished)
  head, head_done = false, true
end

if take > 0 and not paused then
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
      redis.call("HSET", state, STATE.expires, now + ttl, STATE.holder, worker)
    else
      redis.call("HSET", state, STATE.head, reply[2], STATE.attempt, 1, STATE.expires, now + ttl,
        STATE.holder, worker)
    end
    redis.call("ZADD", leases, "XX", now + ttl, queue)
    return reply
  end
end

-- Release. The head's attempt count stays if it is unfinished (shutdown in
-- the middle of a retry), so the next holder continues the count.
local gone = {STATE.token, STATE.expires, STATE.holder}
if head_done then
  gone[#gone + 1], gone[#gone + 2] = STATE.head, STATE.attempt
end
redis.call("ZREM", leases, queue)
local remaining = redis.call("XLEN", stream) + redis.call("LLEN", replays)
if remaining > 0 and not paused then
  redis.call("ZADD", ready, "NX", now, queue)
  redis.call("PUBLISH", channel, WAKE.line_one .. queue)  -- back in line
elseif remaining == 0 and tail <= now then
  gone[#gone + 1] = STATE.tail  -- an idle queue keeps no state (its hash goes with its last field)
end
redis.call("HDEL", state, unpack(gone))
return {REPLY.released, remaining}
