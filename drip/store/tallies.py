"""The deployment's Prometheus counters and histograms, held in Redis: each process counts in memory
and adds its counts to one hash (keys.metrics) every DRIP_METRICS_FLUSH_MS, in one pipelined round trip,
so the hot paths (a webhook request, a handled message) only add to a dict. The console's /metrics reads
the hash: one scrape covers every process of every host, and counts survive a process's restart.

Fields are "<family>|<label>=<value>,...": labels are route patterns, sources, endpoints and codes,
never queue names or ids, so the hash stays small.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections import Counter

import redis

from drip.core.keys import Keys

#: Histogram buckets (seconds) of drip_handler_duration_seconds and drip_lag_seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_LE = (*(str(b) for b in BUCKETS), "+Inf")  # the `le` label of each bucket, the last for what exceeds them


def field(family: str, **labels: str) -> str:
    return _field(family, tuple(labels.items()))


@functools.lru_cache(maxsize=4096)
def _field(family: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A field's text, built once per family and labels: counts are taken per message and per request,
    and labels are few (route patterns, sources, endpoints, codes)."""
    return family + "|" + ",".join(f"{k}={v}" for k, v in labels)


def parse_field(text: str) -> tuple[str, dict[str, str]]:
    family, _, labels = text.partition("|")
    return family, dict(item.split("=", 1) for item in labels.split(",") if item)


class Tally:
    """In-process counts, added to Redis by `flush` (a thread calls it on a timer; see `start`)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, family: str, n: float = 1, **labels: str) -> None:
        with self._lock:
            self._counts[field(family, **labels)] += n

    def observe(self, family: str, seconds: float, **labels: str) -> None:
        """One observation of a histogram: its bucket (cumulative buckets are summed at scrape), sum, count."""
        index = bisect.bisect_left(BUCKETS, seconds)
        le = _LE[index]
        items = tuple(labels.items())
        with self._lock:
            self._counts[_field(family + "_bucket", (*items, ("le", le)))] += 1
            self._counts[_field(family + "_sum", items)] += seconds
            self._counts[_field(family + "_count", items)] += 1

    def take(self) -> Counter[str]:
        """The counts so far, and start again from zero (give them back if they cannot be stored)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def give_back(self, counts: Counter[str]) -> None:
        with self._lock:
            self._counts.update(counts)

    def flush(self, client: redis.Redis, keys: Keys) -> int:
        """Add the counts to Redis (one round trip); on failure they are kept for the next flush."""
        counts = self.take()
        if not counts:
            return 0
        try:
            pipe = client.pipeline(transaction=False)
            add_counts(pipe, keys, counts)
            pipe.execute()
        except redis.RedisError:
            self.give_back(counts)
            return 0
        return len(counts)

    def start(self, client: redis.Redis, keys: Keys, interval_ms: int, stop: threading.Event) -> threading.Thread:
        """Flush every `interval_ms` until `stop`, then once more."""
        def run() -> None:
            while not stop.wait(interval_ms / 1000):
                self.flush(client, keys)
            self.flush(client, keys)

        thread = threading.Thread(target=run, name="drip-tally", daemon=True)
        thread.start()
        return thread


def add_counts(pipe, keys: Keys, counts: Counter[str]) -> None:
    """Queue on a pipeline (sync or async) the increments of `counts`."""
    for name, n in counts.items():
        if float(n).is_integer():
            pipe.hincrby(keys.metrics(), name, int(n))
        else:
            pipe.hincrbyfloat(keys.metrics(), name, n)


def read(client: redis.Redis, keys: Keys) -> dict[str, float]:
    """Every count in Redis, by field."""
    return {k.decode(): float(v) for k, v in client.hgetall(keys.metrics()).items()}
