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
    """The offset of this host's clock from Redis's, from the TIME call with the shortest round trip
    among the last few (as NTP picks its samples): a slow round trip says little about when Redis read
    its clock. `error_ms` is half that round trip, the most the estimate can be off."""

    _SAMPLES = 8

    def __init__(self) -> None:
        self.offset_ms = 0
        self.error_ms = 0
        self._samples: list[tuple[int, int]] = []  # (round trip ms, offset ms)

    def sync(self, client: redis.Redis) -> None:
        """Measure the offset with one TIME call (its midpoint, to halve the round trip's error)."""
        before = time.time_ns()
        seconds, micros = client.time()
        after = time.time_ns()
        sample = ((after - before) // 1_000_000, seconds * 1000 + micros // 1000 - (before + after) // 2_000_000)
        self._samples = [*self._samples[-(self._SAMPLES - 1):], sample]
        round_trip, self.offset_ms = min(self._samples)
        self.error_ms = round_trip // 2 + 1

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms
