"""The console with 100,000 queues in Redis: how long the Queues page, the Overview and a /metrics
scrape take (p50 of sequential requests over loopback, a console process of its own, no workers, so
every queue stays as stored: half in line, half scheduled)."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import redis

from bench.drip_runs import BATCH
from bench.stats import percentile
from drip.core import settings as config
from drip.core.keys import Keys
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store.stores import Store
from tests.helpers import Cluster, delete_prefix, free_port, wait_for

TOKEN = "bench-token"


def fill(store: Store, queues: int) -> None:
    """`queues` queues of one message each: the even ones ready (in line), the odd ones due in an hour."""
    later = store.redis_now_ms() + 3_600_000
    for start in range(0, queues, BATCH):
        store.queues.enqueue([Inbound(new_id(), f"location:{i % 977}:workflow:{i}", b'{"n":1}',
                                      Timing("at", later) if i % 2 else Timing())
                              for i in range(start, min(queues, start + BATCH))])


def timed(client: httpx.Client, path: str, repeat: int) -> float:
    """p50 in ms of `repeat` GETs of `path` (after one warm-up)."""
    client.get(path).raise_for_status()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    return percentile(times, 0.5)


def run(database_url: str, queues: int = 100_000, repeat: int = 30) -> dict[str, float]:
    prefix = f"bench{secrets.token_hex(3)}"
    settings = config.load(prefix=prefix, database_url=database_url)
    client = redis.Redis.from_url(settings.redis_url)
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-console-"))
    cluster = Cluster(settings, folder)
    try:
        fill(Store.from_settings(settings), queues)
        port = free_port()
        cluster.start("console", "console", "--port", str(port), DRIP_CONSOLE_TOKENS=f"{TOKEN}:viewer",
                      DRIP_LOG_LEVEL="warning")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            wait_for(lambda: _answers(http), 30, "the console")
            return {
                "Queues page /queues (first page of 50), p50 ms": timed(http, "/queues", repeat),
                "Queues page, oldest waiting first, p50 ms": timed(http, "/queues?sort=waiting", repeat),
                "Queues page, glob location:5:*, p50 ms": timed(http, "/queues?match=location:5:*", repeat),
                "Overview /, p50 ms": timed(http, "/", repeat),
                "/metrics scrape, p50 ms": timed(http, "/metrics", repeat),
            }
    finally:
        cluster.stop()
        delete_prefix(client, Keys(prefix))
        shutil.rmtree(folder, ignore_errors=True)


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/api/overview").status_code == 200
    except httpx.HTTPError:
        return False
