-- budget: a downstream's request budget, shared by every worker process and host: at most
-- `limit` requests in any `window_ms` and, when `daily_limit` is above 0, that many a day.
-- A route's rate_limit is one (its queues share it, or per rate_key); GoHighLevel's
-- per-location budget (100 per 10 s, 200,000 a day, with a safety margin) is another.
--
-- KEYS: log (sorted set of request times), meta (hash of the BUDGET fields)
-- ARGV: op ("take" | "settle" | "observe"), limit, window_ms, daily_limit,
--       then for "settle": the request's entry; for "observe": remaining ("" if unknown), blocked_ms
-- Returns: for "take", {0, entry} if a request may go now (it is logged as `entry`), else {ms to wait, 0};
--          for "settle" and "observe", {0, 0}.
-- Layout: drip/core/layout.py.
--
-- Invariants: a sliding log, not a refilling bucket, so no window ever holds more
-- than `limit` requests; a request is logged when it is allowed and moved to when
-- its answer came ("settle"), so however long it travelled it counts for a whole
-- window after GHL saw it; what GHL reports only ever tightens the log (requests
-- made by others count as if made here); a 429's Retry-After blocks the budget.
local log, meta = KEYS[1], KEYS[2]
local op, limit, window, daily_limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
redis.call("ZREMRANGEBYSCORE", log, "-inf", now - window)
local count = redis.call("ZCARD", log)
local today = math.floor(now / 86400000)
if tonumber(redis.call("HGET", meta, BUDGET.day) or "-1") ~= today then
  redis.call("HSET", meta, BUDGET.day, today, BUDGET.day_count, 0)
end

local function note()
  local entry = redis.call("HINCRBY", meta, BUDGET.seq, 1)
  redis.call("ZADD", log, now, entry)
  return entry
end

local wait, entry = 0, 0
if op == "take" then
  local blocked = tonumber(redis.call("HGET", meta, BUDGET.blocked) or "0")
  if blocked > now then
    wait = blocked - now
  elseif count < limit and (daily_limit == 0 or tonumber(redis.call("HGET", meta, BUDGET.day_count)) < daily_limit) then
    entry = note()
    redis.call("HINCRBY", meta, BUDGET.day_count, 1)
  elseif count >= limit then
    local oldest = redis.call("ZRANGE", log, 0, 0, "WITHSCORES")
    wait = math.max(1, tonumber(oldest[2]) + window - now)
  else
    wait = (today + 1) * 86400000 - now
  end
elseif op == "settle" then
  redis.call("ZADD", log, "XX", now, ARGV[5])
else
  local remaining, blocked_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
  if remaining then
    for _ = count + 1, limit - remaining do
      note()
    end
  end
  if blocked_ms and blocked_ms > 0 then
    redis.call("HSET", meta, BUDGET.blocked, now + blocked_ms)
  end
end
redis.call("PEXPIRE", log, window * 2)
redis.call("PEXPIRE", meta, 2 * 86400000)
return {wait, entry}
