-- prelude: helpers every script may use. drip/store/scripts.py loads each script as this
-- prelude followed by the script, after replacing the data layout's names (STATE.token,
-- ENTRY.payload, EVENT.kind, KIND.done, DEAD.error, WAKE.line, REPLY.lost, ...) by their
-- strings from drip/core/layout.py: fields are named there, never spelled here.

-- Redis's clock in milliseconds: every time two processes must agree on is read here.
local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A stream entry's flat {field, value, ...} list as a table.
local function fields_of(flat)
  local f = {}
  for i = 1, #flat, 2 do
    f[flat[i]] = flat[i + 1]
  end
  return f
end

-- The parts of a replay list entry "<id>\n<enqueued_ms>\n<run_at_ms>\n<payload>":
-- id, enqueued_ms, run_at_ms, payload.
local function read_replay(text)
  local a = string.find(text, "\n", 1, true)
  local b = string.find(text, "\n", a + 1, true)
  local c = string.find(text, "\n", b + 1, true)
  return string.sub(text, 1, a - 1), string.sub(text, a + 1, b - 1), string.sub(text, b + 1, c - 1),
    string.sub(text, c + 1)
end

-- Keep a queue's place in its shard's due index at its earliest scheduled run_at (out when none is left).
local function index_due(delayed, due, queue)
  local first = redis.call("ZRANGE", delayed, 0, 0, "WITHSCORES")
  if #first > 0 then
    redis.call("ZADD", due, first[2], queue)
  else
    redis.call("ZREM", due, queue)
  end
end

-- Take acked entries out of a queue's stream: every entry up to and including `entry`. Entries leave a
-- stream only from its head, so trimming below the one after it removes exactly those, far cheaper
-- than XDEL.
local function trim_through(stream, entry)
  local dash = string.find(entry, "-", 1, true)
  redis.call("XTRIM", stream, "MINID",
    string.sub(entry, 1, dash) .. string.format("%.0f", tonumber(string.sub(entry, dash + 1)) + 1))
end

-- Take the acked head out of its queue: the replay list's first entry ("f:<id>"), or the stream's oldest.
local function remove_acked(stream, replays, entry)
  if string.sub(entry, 1, 2) == "f:" then
    redis.call("LPOP", replays)
  else
    trim_through(stream, entry)
  end
end

-- The history event of a handled message.
local function done_event(events, id, queue, attempt, started, finished)
  redis.call("XADD", events, "*", EVENT.kind, KIND.done, EVENT.id, id, EVENT.queue, queue, EVENT.attempts, attempt,
    EVENT.started, started, EVENT.finished, finished)
end

-- The parts of an acks list entry (mark.lua) "<entry_id>\n<id>\n<started_ms>\n<finished_ms>\n<next_entry_id>".
local function read_mark(text)
  local parts, from = {}, 1
  for _ = 1, 4 do
    local nl = string.find(text, "\n", from, true)
    parts[#parts + 1] = string.sub(text, from, nl - 1)
    from = nl + 1
  end
  parts[5] = string.sub(text, from)
  return parts[1], parts[2], parts[3], parts[4], parts[5]
end

-- Apply the acks the lease's drain sent ahead (mark.lua; its acks list, oldest first) before anything
-- else reads the queue's head: each whose entry is the head takes the head out of the queue, records it
-- done and makes the next message of its batch the head, its attempt counted (its handler may have
-- started). A mark sent twice (again after a broken connection) matches no head and is dropped. Every
-- script that reads the head applies them, and every one that ends a lease does so first, so the marks
-- waiting are always the current lease's. Returns the head and its attempt as they are then
-- (unchanged when no ack waited).
local function apply_acks(acks, state, stream, replays, events, queue, head, attempt)
  local marks = redis.call("LRANGE", acks, 0, -1)
  if #marks == 0 then
    return head, attempt
  end
  redis.call("DEL", acks)
  local last_in_stream, moved = nil, false
  for _, mark in ipairs(marks) do
    local entry, id, started, finished, next_entry = read_mark(mark)
    if entry == head then
      if string.sub(entry, 1, 2) == "f:" then
        redis.call("LPOP", replays)
      else
        last_in_stream = entry
      end
      done_event(events, id, queue, attempt, started, finished)
      head, attempt, moved = next_entry, 1, true
    end
  end
  if last_in_stream then
    trim_through(stream, last_in_stream)
  end
  if moved then
    redis.call("HSET", state, STATE.head, head, STATE.attempt, attempt)
  end
  return head, attempt
end
