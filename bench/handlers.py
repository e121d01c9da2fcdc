"""Handlers for benchmarks: as close to no work as a handler gets, plus a counter to know when all are done."""

from __future__ import annotations

import os
import threading
import time

import redis

_local = threading.local()


def count(message) -> None:
    """Count the message in Redis (one INCR): the benchmark polls the counter to see the run finish."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = redis.Redis.from_url(os.environ["DRIP_REDIS_URL"])
    client.incr(f"{os.environ['DRIP_PREFIX']}:bench:done")


def lag(message) -> None:
    """Record how late the handler started against the message's run_at (ms), then count it."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = redis.Redis.from_url(os.environ["DRIP_REDIS_URL"])
    late_ms = time.time() * 1000 - message.run_at_ms
    prefix = os.environ["DRIP_PREFIX"]
    pipe = client.pipeline(transaction=False)
    pipe.rpush(f"{prefix}:bench:lag", f"{late_ms:.3f}")
    pipe.incr(f"{prefix}:bench:done")
    pipe.execute()


def noop(message) -> None:
    """Do nothing: the run measures drip alone (its end is seen in drip's own Redis state)."""


def lag_of_light(message) -> None:
    """`lag` for every queue but the hot one ("hot"), which is only counted (bench:hot): the fairness
    scenario measures how late the light queues start beside it, and how fast it drains."""
    if message.queue != "hot":
        lag(message)
        return
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = redis.Redis.from_url(os.environ["DRIP_REDIS_URL"])
    client.incr(f"{os.environ['DRIP_PREFIX']}:bench:hot")
