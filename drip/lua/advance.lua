-- advance: the drain's one call per batch. Acks the messages just handled,
-- then either takes the next batch or releases the lease.
--
-- KEYS: state, stream, leases, ready, events, front, handed
-- ARGV: queue, token, now_ms, ttl_ms, worker, take (how many to take; "0"
--       releases), wake_channel, then for each acked message, in queue order:
--       entry_id, id, started_ms, finished_ms
-- Returns: {"lost"} | {"released", remaining} |
--          {"messages", then per message: entry_id, id, payload, enqueued_ms, run_at_ms, attempt}
--
-- The next messages are the front list's (messages replayed to the head of the
-- queue, entry ids "f:<id>") if any, then the stream's, from its head.
--
-- Invariants: only the lease holder (token) changes the queue (fencing: a
-- stalled holder whose lease was reclaimed cannot ack); a message leaves the
-- queue only when acked (or dead-lettered), so the head is always the next
-- message to handle or the first one a dead holder left unacked; the head's
-- attempt count lives here, bumped as it is handed out, so it survives crashes
-- of the process running it. The rest of a batch counts as attempt 1: when a
-- holder dies with a batch in hand, reclaim marks that many messages "care",
-- and they are then handed out one at a time, so a message that kills its
-- process every time is counted as the head and ends in the dead letters. A
-- paused queue hands out nothing.
local queue, token, now, ttl, worker = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local take, channel = tonumber(ARGV[6]), ARGV[7]
local state, stream, leases, ready, events, front, handed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local FIRST_ACK = 8

-- The state's fields this script reads, in one call (each call a script makes costs Redis
-- about as much as a command from a client). None of them is changed behind this script's
-- back while it runs, so the local copies below stay true as the script updates them.
local s = redis.call("HMGET", state, "tok", "head", "att", "care", "paused", "tail")
if s[1] ~= token then
  return {"lost"}
end
local head, attempt, care, paused, tail = s[2], s[3], tonumber(s[4]), s[5] == "1", tonumber(s[6] or "0")
redis.call("SREM", handed, queue)  -- its drain has started (a no-op after the first step)

local acks = (#ARGV - FIRST_ACK + 1) / 4
local head_done = false  -- the head was acked: its fields go, unless a new head replaces them
if acks > 0 and head == ARGV[FIRST_ACK] then
  local last_of_stream
  for i = 0, acks - 1 do
    local at = FIRST_ACK + 4 * i
    local entry = ARGV[at]
    if string.sub(entry, 1, 2) == "f:" then
      redis.call("LPOP", front)
    else
      last_of_stream = entry
    end
    redis.call("XADD", events, "*", "k", "done", "id", ARGV[at + 1], "q", queue, "a", i == 0 and attempt or "1",
      "s", ARGV[at + 2], "f", ARGV[at + 3])
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
  if care then
    if care <= acks then
      redis.call("HDEL", state, "care")
      care = nil
    else
      care = care - acks
      redis.call("HSET", state, "care", care)
    end
  end
end

if take > 0 and not paused then
  if care then
    take = 1
  end
  local reply = {"messages"}
  local count = 0
  for _, replayed in ipairs(redis.call("LRANGE", front, 0, take - 1)) do
    local a = string.find(replayed, "\n", 1, true)
    local b = string.find(replayed, "\n", a + 1, true)
    local c = string.find(replayed, "\n", b + 1, true)
    local id = string.sub(replayed, 1, a - 1)
    reply[#reply + 1] = "f:" .. id
    reply[#reply + 1] = id
    reply[#reply + 1] = string.sub(replayed, c + 1)
    reply[#reply + 1] = string.sub(replayed, a + 1, b - 1)
    reply[#reply + 1] = string.sub(replayed, b + 1, c - 1)
    reply[#reply + 1] = 1
    count = count + 1
  end
  if count < take then
    for _, entry in ipairs(redis.call("XRANGE", stream, "-", "+", "COUNT", take - count)) do
      local f = {}
      for i = 1, #entry[2], 2 do
        f[entry[2][i]] = entry[2][i + 1]
      end
      reply[#reply + 1] = entry[1]
      reply[#reply + 1] = f["id"]
      reply[#reply + 1] = f["p"]
      reply[#reply + 1] = f["e"]
      reply[#reply + 1] = f["r"]
      reply[#reply + 1] = 1
      count = count + 1
    end
  end
  if count > 0 then
    if head == reply[2] then
      reply[7] = redis.call("HINCRBY", state, "att", 1)
      redis.call("HSET", state, "exp", now + ttl, "who", worker, "n", count)
    else
      redis.call("HSET", state, "head", reply[2], "att", 1, "exp", now + ttl, "who", worker, "n", count)
    end
    redis.call("ZADD", leases, "XX", now + ttl, queue)
    return reply
  end
end

-- Release. The head's attempt count stays if it is unfinished (shutdown in
-- the middle of a retry), so the next holder continues the count.
local gone = {"tok", "exp", "who", "n"}
if head_done then
  gone[#gone + 1], gone[#gone + 2] = "head", "att"
end
redis.call("ZREM", leases, queue)
local remaining = redis.call("XLEN", stream) + redis.call("LLEN", front)
if remaining > 0 and not paused then
  redis.call("ZADD", ready, "NX", now, queue)
  redis.call("PUBLISH", channel, "q:" .. queue)  -- back in line
elseif remaining == 0 then
  if care then
    gone[#gone + 1] = "care"
  end
  if tail <= now then
    gone[#gone + 1] = "tail"  -- an idle queue keeps no state (its hash goes with its last field)
  end
end
redis.call("HDEL", state, unpack(gone))
return {"released", remaining}
