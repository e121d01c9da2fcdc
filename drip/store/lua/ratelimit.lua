-- ratelimit: take one token from a client's bucket (DRIP_RATE_LIMIT).
--
-- KEYS: bucket
-- ARGV: tokens_per_ms, burst
-- Returns: 0 if a token was taken, else how many ms until one is there.
-- Layout: drip/core/layout.py.
--
-- Invariant: a bucket refills at the rate up to `burst`, on Redis's clock, so
-- every web process shares one budget per client; an idle bucket expires.
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000  -- to the microsecond: buckets refill smoothly
local bucket = redis.call("HMGET", KEYS[1], BUCKET.tokens, BUCKET.at)
local tokens, at = tonumber(bucket[1]), tonumber(bucket[2])
if tokens == nil then
  tokens, at = burst, now
end
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call("HSET", KEYS[1], BUCKET.tokens, tokens, BUCKET.at, now)
redis.call("PEXPIRE", KEYS[1], math.ceil(burst / rate) + 1000)
return wait
