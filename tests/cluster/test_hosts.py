"""drip's processes on a real Redis Cluster: the whole pipeline with the broker on RabbitMQ or on a
standalone Redis, two complete hosts sharing the work, and a standby supervisor taking over."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psycopg
import pytest

from drip.core.keys import Keys
from drip.store.connection import redis_client
from tests.chaos.test_clocks import children_of
from tests.helpers import Cluster, wait_for
from tests.sample_handlers import read_log
from tests.test_pipeline import check_order_and_no_overlap, post_queues

pytestmark = pytest.mark.slow

STANDALONE_BROKER = "redis://127.0.0.1:6379/0"
REPORT = os.environ.get("DRIP_CHAOS_REPORT")


def handled(client, prefix: str) -> set[str]:
    return {row["id"] for row in read_log(client, prefix) if row["ev"] == "exit"}


@pytest.mark.parametrize("broker", ["rabbitmq", "standalone redis"])
def test_the_pipeline_runs_on_a_cluster(cluster_settings, tmp_path, broker):
    """2,000 messages over 100 queues through web, supervisor and workers on the cluster: each handled
    once, in order, without overlap, and each in the history as done."""
    settings = cluster_settings if broker == "rabbitmq" else cluster_settings.model_copy(
        update={"broker_url": STANDALONE_BROKER})
    client = redis_client(settings.redis_url)
    host = Cluster(settings, tmp_path).start_all()
    try:
        posted = asyncio.run(post_queues(host.web_url, 100, 20))
        ids = {mid for q in posted.values() for mid in q}
        wait_for(lambda: handled(client, settings.prefix) >= ids, 180, "2,000 handled messages")
        check_order_and_no_overlap(read_log(client, settings.prefix), posted)

        def done() -> int:
            with psycopg.connect(settings.database_url) as conn:
                return conn.execute("SELECT count(*) FROM sequential_queue WHERE id = ANY(%s) AND status = 'done'",
                                    (list(ids),)).fetchone()[0]

        wait_for(lambda: done() == len(ids), 60, "every message's history done")
    finally:
        host.stop()


def test_two_hosts_share_the_work_and_each_queue_keeps_its_order(cluster_settings, tmp_path):
    """Two complete hosts (web, supervisor, worker each); 100 queues x 30 messages posted to the two webs
    in turn: every message once, each queue in order, both hosts' workers at work."""
    client = redis_client(cluster_settings.redis_url)
    hosts = [Cluster(cluster_settings, tmp_path / name) for name in ("a", "b")]
    for host in hosts:
        host.folder.mkdir()
        host.start_all(DRIP_PROCESSES="1")
    try:
        posted: dict[str, list[str]] = {}
        for round_ in range(30):  # each queue's messages alternate between the two webs, in order
            part = asyncio.run(post_queues(hosts[round_ % 2].web_url, 100, 1))
            for q, ids in part.items():
                posted.setdefault(q, []).extend(ids)
        ids = {mid for q in posted.values() for mid in q}
        wait_for(lambda: handled(client, cluster_settings.prefix) >= ids, 180, "3,000 handled messages")
        log = read_log(client, cluster_settings.prefix)
        check_order_and_no_overlap(log, posted)
        for host_pool in (host.children["worker"].pid for host in hosts):
            assert {row["pid"] for row in log} & children_of(host_pool), "both hosts handled messages"
    finally:
        for host in hosts:
            host.stop()


def test_a_standby_supervisor_leads_when_the_leaders_host_dies(cluster_settings, tmp_path):
    """Host a leads, host b stands by; SIGKILL a's supervisor: b's leads once a's lease lapses, and the
    messages posted then are handled."""
    settings = cluster_settings.model_copy(update={"lease_ttl_ms": 2000})
    client = redis_client(settings.redis_url)
    key = Keys(settings.prefix).leader()
    a, b = (Cluster(settings, tmp_path / name) for name in ("a", "b"))
    for host in (a, b):
        host.folder.mkdir()
    try:
        a.start_all(DRIP_PROCESSES="1")
        first = wait_for(lambda: client.get(key), 30, "host a's supervisor to lead")
        b.start_all(DRIP_PROCESSES="1")
        os.kill(a.children["supervisor"].pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: client.get(key) not in (None, first), 20, "host b's supervisor to lead")
        took_over_s = time.monotonic() - killed
        posted = asyncio.run(post_queues(b.web_url, 20, 5))
        ids = {mid for q in posted.values() for mid in q}
        wait_for(lambda: handled(client, settings.prefix) >= ids, 60, "messages posted after the leader died")
        if REPORT:
            with open(REPORT, "a") as f:
                f.write(f"cluster: a standby supervisor led {took_over_s:.1f} s after the leader's SIGKILL "
                        f"(lease {settings.lease_ttl_ms} ms)\n")
    finally:
        for host in (a, b):
            host.stop()
