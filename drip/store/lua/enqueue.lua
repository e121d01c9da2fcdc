#!lua flags=allow-cross-slot-keys
-- enqueue: store a request's messages, all or nothing, in one call.
--
-- KEYS, per message in order: stream, state, ready, events, delayed, bodies, due, ids, seq
--       [, dedup when its dedup flag is "1"]
-- ARGV: n, dedup_ttl_ms, wake_channel, horizon_ms,
--       then per message: queue, id, payload, meta_json, dedup_flag, kind, low_ms, high_ms, u
--       (kind "now" | "delay" | "at" | "spread"; u in [0, 1) picks the point of a spread)
-- Returns: per message the fields of layout.STORED: {id, run_at_ms, duplicate (0/1)}; a
--   duplicate answers the original.
--   Error "HORIZON <index> <run_at_ms>" (nothing stored) when a run_at falls past the horizon.
-- Layout (fields, events, wake codes): drip/core/layout.py.
--
-- Invariants:
-- * run_at is computed on Redis's clock (TIME), the one clock promotion uses too.
-- * Drip chaining: a spread's run_at = max(now, tail) + low + u * (high - low), where
--   tail (state.tail) is the latest run_at given in the queue, read and moved here.
-- * Handling follows run_at order: a message goes straight to the stream only when it
--   is due and nothing due is still waiting in the delayed set; otherwise it waits in
--   the delayed set, ordered by (run_at, arrival sequence).
-- * A queue with messages in its stream is leased, in line (ready) or paused; a
--   queue with scheduled messages is in the due index at its earliest run_at.
-- * Everything is decided before anything is written, and the shebang makes Redis
--   refuse the call up front under OOM: nothing is ever stored half-way.
local now = now_ms()
local n, dedup_ttl, channel, horizon = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])

-- Pass 1: read and decide.
-- Per queue, read once per call: its drip tail, and whether it can get in line (no lease,
-- not paused). Neither changes while the script runs except the tail, which it keeps here.
local plan, tails, free, seen = {}, {}, {}, {}
local k, a = 1, 5
for i = 1, n do
  local m = {
    stream = KEYS[k], state = KEYS[k + 1], ready = KEYS[k + 2], events = KEYS[k + 3],
    delayed = KEYS[k + 4], bodies = KEYS[k + 5], due = KEYS[k + 6], ids = KEYS[k + 7], seq = KEYS[k + 8],
    queue = ARGV[a], id = ARGV[a + 1], payload = ARGV[a + 2], meta = ARGV[a + 3], kind = ARGV[a + 5],
  }
  local low, high, u = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
  k = k + 9
  if ARGV[a + 4] == "1" then
    m.dedup = KEYS[k]
    k = k + 1
    m.original = seen[m.dedup] or redis.call("GET", m.dedup)
  end
  a = a + 9
  if not m.original then
    local tail = tails[m.queue]
    if tail == nil then
      local st = redis.call("HMGET", m.state, STATE.tail, STATE.token, STATE.paused)
      tail = tonumber(st[1] or "0")
      free[m.queue] = not st[2] and st[3] ~= "1"
    end
    local run_at = now
    if m.kind == "delay" then
      run_at = now + low
    elseif m.kind == "at" then
      run_at = math.max(now, low)
    elseif m.kind == "spread" then
      run_at = math.max(now, tail) + low + math.floor(u * (high - low))
    end
    if run_at > now + horizon then
      return redis.error_reply("HORIZON " .. i .. " " .. run_at)
    end
    tails[m.queue] = math.max(tail, run_at)
    m.run_at = run_at
    if m.dedup then
      seen[m.dedup] = m.id .. " " .. run_at
    end
  end
  plan[i] = m
end

-- Pass 2: write.
-- Whether a queue's delayed set holds a due message is read once per queue: it cannot turn
-- true during the call, as a message joins the delayed set with a score <= now only if one
-- was due there already.
local result, lined, wake, due_waiting = {}, {}, false, {}
for i = 1, n do
  local m = plan[i]
  if m.original then
    local sep = string.find(m.original, " ", 1, true)
    result[i] = {string.sub(m.original, 1, sep - 1), string.sub(m.original, sep + 1), 1}
  else
    if m.dedup then
      redis.call("SET", m.dedup, m.id .. " " .. m.run_at, "PX", dedup_ttl)
    end
    if tails[m.queue] > now then
      redis.call("HSET", m.state, STATE.tail, tails[m.queue])  -- a past tail needs no keeping
    end
    if due_waiting[m.queue] == nil then
      due_waiting[m.queue] = #redis.call("ZRANGEBYSCORE", m.delayed, "-inf", now, "LIMIT", 0, 1) > 0
    end
    if m.run_at <= now and not due_waiting[m.queue] then
      redis.call("XADD", m.stream, "*", ENTRY.id, m.id, ENTRY.payload, m.payload, ENTRY.enqueued, now,
        ENTRY.run_at, m.run_at)
      redis.call("XADD", m.events, "*", EVENT.kind, KIND.queued, EVENT.id, m.id, EVENT.queue, m.queue,
        EVENT.payload, m.payload, EVENT.enqueued, now, EVENT.run_at, m.run_at, EVENT.meta, m.meta)
      if free[m.queue] then
        free[m.queue] = false  -- in line now (or already was): one ZADD per queue and call
        if redis.call("ZADD", m.ready, "NX", now, m.queue) == 1 then
          lined[#lined + 1] = m.queue
        end
      end
    else
      local member = string.format("%016x", redis.call("INCR", m.seq)) .. m.id
      redis.call("ZADD", m.delayed, m.run_at, member)
      redis.call("HSET", m.bodies, member, now .. "\n" .. m.payload)
      redis.call("HSET", m.ids, m.id, m.queue .. "\n" .. member)
      if redis.call("ZADD", m.due, "LT", "CH", m.run_at, m.queue) == 1 then
        wake = true  -- a new earliest run_at: the supervisor re-arms promotion
      end
      redis.call("XADD", m.events, "*", EVENT.kind, KIND.scheduled, EVENT.id, m.id, EVENT.queue, m.queue,
        EVENT.payload, m.payload, EVENT.enqueued, now, EVENT.run_at, m.run_at, EVENT.meta, m.meta)
    end
    result[i] = {m.id, m.run_at, 0}
  end
end
-- Wake-ups: WAKE.line_one when one queue got in line (a standing drain claims just that one),
-- WAKE.line when several did, WAKE.due when only the due index changed (the supervisor re-arms).
if #lined == 1 then
  redis.call("PUBLISH", channel, WAKE.line_one .. lined[1])
elseif #lined > 1 then
  redis.call("PUBLISH", channel, WAKE.line)
elseif wake then
  redis.call("PUBLISH", channel, WAKE.due)
end
return result
