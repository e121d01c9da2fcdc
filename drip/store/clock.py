"""Redis's clock, read in a worker process without a round trip.

Decisions two processes must agree on are made inside scripts, on Redis's TIME. What a
process only records or compares against those decisions (when a handler started and
finished, whether a message was released before its run_at) must be on the same clock
too, or a host whose clock is off would write skewed history and cry `released_early`.
So each worker process measures the offset of its own clock from Redis's on every
heartbeat and adds it to its clock.
"""

from __future__ import annotations

import time

import redis


class RedisClock:
    def __init__(self) -> None:
        self.offset_ms = 0

    def sync(self, client: redis.Redis) -> None:
        """Measure the offset with one TIME call (its midpoint, to halve the round trip's error)."""
        before = time.time_ns()
        seconds, micros = client.time()
        after = time.time_ns()
        self.offset_ms = seconds * 1000 + micros // 1000 - (before + after) // 2_000_000

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms
