"""kill -9 of a Redis Cluster master while drip runs with DRIP_REDIS_MIN_REPLICAS=1: its replica is
promoted, the killed node comes back as the new master's replica, and nothing that got a 2xx is lost.

The module has a cluster of its own (the fixture is per module), since this test kills one of its nodes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict

import httpx
import pytest

from drip.core.keys import Keys, shard_of
from drip.store.stores import Store
from tests.chaos.test_kills import order_report
from tests.helpers import Cluster, wait_for
from tests.sample_handlers import read_log

pytestmark = pytest.mark.slow

REPORT = os.environ.get("DRIP_CHAOS_REPORT")
LOG_URL = "redis://127.0.0.1:6379/0"  # the test's own log lives off the cluster under test


def test_a_master_killed_mid_run_loses_nothing_acknowledged(cluster_settings, redis_cluster, tmp_path, r):
    """Messages posted to 40 queues in turn, each retried with its dedup_id until it gets a 2xx; a master
    is killed and restarted mid-run. The webhook answers only 2xx or 503, 503 only until the killed node
    is back as a replica (and a few seconds), every message that got a 2xx is handled, in order."""
    settings = cluster_settings.model_copy(update={"redis_min_replicas": 1})
    host = Cluster(settings, tmp_path).start_all(DRIP_TEST_LOG_URL=LOG_URL)
    posted: dict[str, list[str]] = defaultdict(list)
    answers: list[tuple[float, int]] = []  # (when, status) of every answer
    other: list[str] = []
    stop = threading.Event()

    def post() -> None:
        n = 0
        with httpx.Client(base_url=host.web_url, timeout=10) as http:
            while not stop.is_set():
                queue = f"f{n % 40:02d}"
                body = {"queue": queue, "payload": {"n": n}, "dedup_id": f"m{n}"}
                while not stop.is_set():
                    try:
                        answer = http.post("/enqueue", json=body)
                    except httpx.HTTPError as exc:
                        other.append(f"{type(exc).__name__}: {exc}")
                        continue
                    answers.append((time.monotonic(), answer.status_code))
                    if answer.status_code == 202:
                        posted[queue].append(answer.json()["id"])
                        break
                    if answer.status_code != 503:
                        other.append(f"{answer.status_code}: {answer.text[:200]}")
                    stop.wait(0.05)
                n += 1

    poster = threading.Thread(target=post, daemon=True)
    poster.start()
    try:
        wait_for(lambda: sum(map(len, posted.values())) >= 400, 60, "the first 400 messages accepted")
        victim = redis_cluster.master_of(Keys(settings.prefix).ready(0))  # serving shard 0's slot
        victim.kill()
        killed = time.monotonic()
        shard0 = Keys(settings.prefix).ready(0)
        wait_for(lambda: redis_cluster.master_of(shard0).port != victim.port and redis_cluster.healthy(), 60,
                 "a replica promoted in the killed master's place")
        failed_over = time.monotonic()
        victim.start()
        wait_for(lambda: victim.role() == "slave" and redis_cluster.healthy(), 60, "the killed node back as a replica")
        rejoined = time.monotonic()
        accepted = sum(map(len, posted.values()))
        wait_for(lambda: sum(map(len, posted.values())) >= accepted + 400, 120, "400 more accepted after the rejoin")
    finally:
        stop.set()
        poster.join(30)
    try:
        ids = {mid for q in posted.values() for mid in q}

        def missing() -> str:
            """Where the accepted messages not handled yet are (for a failure's message)."""
            done = {row["id"] for row in read_log(r, settings.prefix) if row["ev"] == "exit"}
            store = Store.from_settings(settings)
            k = store.keys
            lines = []
            for queue, queue_ids in posted.items():
                left = [mid for mid in queue_ids if mid not in done]
                if left:
                    shard = shard_of(queue)
                    lines.append(f"{queue}: {len(left)} left, stream {store.client.xlen(k.stream(queue))}, state "
                                 f"{store.client.hgetall(k.state(queue))}, ready {store.client.zscore(k.ready(shard), queue)}"
                                 f", lease {store.client.zscore(k.leases(shard), queue)}")
            return "every accepted message handled; still waiting: " + "; ".join(lines[:8])

        wait_for(lambda: ids <= {row["id"] for row in read_log(r, settings.prefix) if row["ev"] == "exit"}, 180,
                 missing)
        log = read_log(r, settings.prefix)
        duplicates, violations, lost = order_report(log, dict(posted))
        refused = [when for when, status in answers if status == 503]
        window = (max(refused) - killed) if refused else 0.0
        if REPORT:
            with open(REPORT, "a") as f:
                f.write(f"cluster failover, min replicas 1: accepted={len(ids)} duplicates={duplicates} "
                        f"violations={violations} lost={lost} failover={failed_over - killed:.1f}s "
                        f"rejoin={rejoined - killed:.1f}s 503s={len(refused)} over {window:.1f}s after the kill\n")
        assert other == [], f"answers other than 2xx and 503: {other[:5]}"
        assert (violations, lost) == (0, 0)
        assert not refused or max(refused) <= rejoined + 10, "503s went on after the rejoin"
    finally:
        host.stop()
        r.delete(f"{settings.prefix}:test:log")
