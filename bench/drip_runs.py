"""drip's side of each scenario: one run each, returning the figures; `bench.__main__` repeats and compares.

Messages are stored the way a producer in front of drip would store them where
the scenario is about processing (one enqueue call per batch of 1,000, through
drip's own Store), and over HTTP where it is about the webhook. The end of a
run is read from drip's own state (no queue in line, none leased), so the
handler stays a no-op and adds no Redis call per message.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import redis

from bench.harness import Running, drip_processes
from bench.peers import Target
from bench.stats import percentile
from drip.core import settings as config
from drip.core.keys import SHARDS, Keys
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store.connection import redis_client
from drip.store.stores import Store
from tests.helpers import Cluster, delete_prefix, wait_for

BATCH = 1000
POOL = {"processes": 2, "threads": 8}


def interleaved(queues: int, per_queue: int, name: str = "q") -> Iterator[list[Inbound]]:
    """Batches of messages, the n-th message of every queue before the (n+1)-th of any."""
    batch = []
    for n in range(per_queue):
        for q in range(queues):
            batch.append(Inbound(new_id(), f"{name}{q}", b'{"n":%d}' % n))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def in_line_or_leased(store: Store) -> int:
    """Queues waiting in line or held by a drain; 0 once every ready message is handled."""
    pipe = store.client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.zcard(store.keys.ready(shard))
        pipe.zcard(store.keys.leases(shard))
    return sum(pipe.execute())


def drain_rate(running: Running, queues: int, per_queue: int) -> float:
    """Store queues x per_queue messages and time them from the first store to the last handled."""
    store = running.store()
    started = time.perf_counter()
    for batch in interleaved(queues, per_queue):
        store.queues.enqueue(batch)
    wait_for(lambda: in_line_or_leased(store) == 0, 600, "every message handled")
    return queues * per_queue / (time.perf_counter() - started)


# --- scenario 1: webhook ------------------------------------------------------------------------


@contextmanager
def webhook(port: int, redis_url: str, processes: int = 1, **settings: object) -> Iterator[Target]:
    """`drip web` alone (no auth, log level warning, `processes` of it, any other `settings`) on `port`, under
    a prefix of its own."""
    prefix = f"bench{secrets.token_hex(3)}"
    settings = config.load(prefix=prefix, redis_url=redis_url, **settings)
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-"))
    cluster = Cluster(settings, folder)
    try:
        url = cluster.start_web(DRIP_LOG_LEVEL="warning", DRIP_WEB_PROCESSES=str(processes), port=port)
        yield Target(url, "/enqueue", b'{"queue":"q","payload":{"n":1}}')
    finally:
        cluster.stop()
        delete_prefix(redis_client(redis_url), Keys(prefix))
        shutil.rmtree(folder, ignore_errors=True)


# --- scenarios 2 and 3: ordered throughput, hot queue -------------------------------------------


def ordered(database_url: str, queues: int, per_queue: int, **settings: object) -> float:
    with drip_processes(database_url, "bench.handlers:noop", web=False, **POOL, **settings) as running:
        return drain_rate(running, queues, per_queue)


# --- scenario 4: latency ------------------------------------------------------------------------


def latency(database_url: str, rate: float, seconds: float, queues: int) -> tuple[float, float]:
    """Store one message every 1/rate s (constant rate) over `queues`; the handler records its start - run_at."""
    with drip_processes(database_url, "bench.handlers:lag", web=False, **POOL) as running:
        store = running.store()
        start, sent = time.perf_counter(), 0
        while (due := start + sent / rate) < start + seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            store.queues.enqueue([Inbound(new_id(), f"lat{sent % queues}", b'{"n":1}')])
            sent += 1
        wait_for(lambda: running.done() >= sent, 120, "every message handled")
        lags = [float(x) for x in running.client.lrange(f"{running.prefix}:bench:lag", 0, -1)]
        return percentile(lags, 0.5), percentile(lags, 0.99)


# --- scenario 6: idle scale ---------------------------------------------------------------------


def add_idle_queues(store: Store, count: int) -> None:
    """`count` queues each holding one message due in an hour."""
    due_at = store.redis_now_ms() + 3_600_000
    for start in range(0, count, BATCH):
        store.queues.enqueue([Inbound(new_id(), f"idle{i}", b'{"n":1}', Timing("at", due_at))
                       for i in range(start, min(count, start + BATCH))])


def survey_ms(store: Store, repeat: int = 50) -> float:
    """Median time of the supervisor's per-wake read of every shard (what a tick costs it)."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        store.workers.survey(head_limit=64)
        times.append((time.perf_counter() - began) * 1000)
    return percentile(times, 0.5)


def idle_scale(database_url: str, idle: int, queues: int, per_queue: int) -> tuple[float, float, float]:
    """(ordered msgs/s, survey ms before the idle queues, survey ms with them)."""
    with drip_processes(database_url, "bench.handlers:noop", web=False, **POOL) as running:
        store = running.store()
        before = survey_ms(store)
        add_idle_queues(store, idle)
        with_idle = survey_ms(store)
        return drain_rate(running, queues, per_queue), before, with_idle


# --- scenario 7: memory -------------------------------------------------------------------------


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def memory(database_url: str, count: int = 10_000) -> dict[str, float]:
    """Redis bytes per ready message, per scheduled message and per idle queue (INFO memory deltas), and
    worker RSS, with drip's processes stopped while messages are stored (nothing is handled meanwhile)."""
    prefix = f"bench{secrets.token_hex(3)}"
    store = Store.from_settings(config.load(prefix=prefix))
    figures: dict[str, float] = {}
    try:
        base = used_memory(store.client)
        for batch in interleaved(1, count, name="ready"):
            store.queues.enqueue(batch)
        figures["bytes per ready message (one queue)"] = (used_memory(store.client) - base) / count
        base = used_memory(store.client)
        due_at = store.redis_now_ms() + 3_600_000
        for start in range(0, count, BATCH):
            store.queues.enqueue([Inbound(new_id(), "sched", b'{"n":1}', Timing("at", due_at))
                           for _ in range(start, min(count, start + BATCH))])
        figures["bytes per scheduled message (one queue)"] = (used_memory(store.client) - base) / count
        base = used_memory(store.client)
        add_idle_queues(store, count)
        figures["bytes per idle queue (one message due in 1 h)"] = (used_memory(store.client) - base) / count
    finally:
        delete_prefix(store.client, Keys(prefix))
    with drip_processes(database_url, "bench.handlers:noop", web=False, **POOL) as running:
        drain_rate(running, 100, 100)
        figures["worker pool RSS, MiB (2 processes, after 10,000 messages)"] = pool_rss_mib(running)
    return figures


def pool_rss_mib(running: Running) -> float:
    """Resident memory of the worker processes (the pool's children, not its parent)."""
    parent = psutil.Process(running.cluster.children["worker"].pid)
    children = parent.children(recursive=True) or [parent]
    return sum(p.memory_info().rss for p in children) / 2**20
