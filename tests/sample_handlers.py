"""Handlers the tests run inside real worker processes.

`record` writes an enter and an exit event per call to a Redis list under the
test's prefix (on DRIP_TEST_LOG_URL if set, else drip's own Redis), so a test can check order, overlap and exactly-once from outside.
The payload steers it: {"sleep": s} sleeps, {"wait_for": key} waits (≤ 60 s)
until that key exists, {"fail": true} raises, {"fail_until": key} raises while
that key is missing, {"kill_self": true} SIGKILLs its own process.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import redis

from drip.store.connection import redis_client

_local = threading.local()


def _client() -> redis.Redis:
    if not hasattr(_local, "client"):
        # DRIP_TEST_LOG_URL keeps the log off the Redis under test (a failover must not lose log lines).
        _local.client = redis_client(os.environ.get("DRIP_TEST_LOG_URL") or os.environ["DRIP_REDIS_URL"])
    return _local.client


def log_key(prefix: str) -> str:
    return f"{prefix}:test:log"


def _event(message, kind: str) -> None:
    row = {"ev": kind, "q": message.queue, "id": message.id, "a": message.attempt, "pid": os.getpid(),
           "t": time.time_ns(), "r": message.run_at_ms}
    _client().rpush(log_key(os.environ["DRIP_PREFIX"]), json.dumps(row))


def record(message) -> None:
    _event(message, "enter")
    payload = message.payload
    if isinstance(payload, dict):
        if payload.get("sleep"):
            # A timed Event wait, not time.sleep, which fails under libfaketime (tests/chaos/test_clocks.py).
            threading.Event().wait(payload["sleep"])
        if payload.get("wait_for"):
            deadline = time.monotonic() + 60
            while not _client().exists(payload["wait_for"]) and time.monotonic() < deadline:
                threading.Event().wait(0.01)
        if payload.get("kill_self"):
            os.kill(os.getpid(), signal.SIGKILL)
        if payload.get("fail") or (payload.get("fail_until") and not _client().exists(payload["fail_until"])):
            _event(message, "exit")
            raise RuntimeError("asked to fail")
    _event(message, "exit")


def read_log(client: redis.Redis, prefix: str) -> list[dict]:
    return [json.loads(row) for row in client.lrange(log_key(prefix), 0, -1)]
