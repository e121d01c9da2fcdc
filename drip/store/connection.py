"""Redis clients for drip's processes, and what "Redis is down" looks like to their callers."""

from __future__ import annotations

import redis
import redis.asyncio

#: Exceptions meaning "Redis cannot be reached right now": callers retry or answer 503.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


def redis_client(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A sync client that fails fast when Redis is down instead of hanging."""
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 2.0))


def async_redis_client(url: str, *, timeout_s: float = 5.0) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 2.0))


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers at `url` (drip dev decides on embedded servers by it)."""
    try:
        return bool(redis_client(url, timeout_s=0.5).ping())
    except REDIS_DOWN:
        return False


def redis_now_ms(client: redis.Redis) -> int:
    """Redis's clock, the one every time two processes must agree on is judged by."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000
