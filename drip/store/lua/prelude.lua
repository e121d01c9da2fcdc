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

-- Take the acked head out of its queue: the replay list's first entry ("f:<id>"), or the
-- stream's oldest. Entries leave a stream only from its head, so trimming below the one
-- after it removes exactly it, far cheaper than XDEL.
local function remove_acked(stream, replays, entry)
  if string.sub(entry, 1, 2) == "f:" then
    redis.call("LPOP", replays)
    return
  end
  local dash = string.find(entry, "-", 1, true)
  redis.call("XTRIM", stream, "MINID",
    string.sub(entry, 1, dash) .. string.format("%.0f", tonumber(string.sub(entry, dash + 1)) + 1))
end

-- The history event of a handled message.
local function done_event(events, id, queue, attempt, started, finished)
  redis.call("XADD", events, "*", EVENT.kind, KIND.done, EVENT.id, id, EVENT.queue, queue, EVENT.attempts, attempt,
    EVENT.started, started, EVENT.finished, finished)
end
