"""The whole path with real processes: web → Redis → supervisor → worker pool → handler → PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
import psycopg
import pytest

from drip.core.keys import Keys
from tests import rawhttp
from tests.helpers import wait_for
from tests.sample_handlers import log_key, read_log

pytestmark = pytest.mark.slow


def exits(r, prefix: str) -> int:
    """Handler calls finished so far (the log holds an enter and an exit per call)."""
    return r.llen(log_key(prefix)) // 2


def check_order_and_no_overlap(log: list[dict], posted: dict[str, list[str]]) -> None:
    """Per queue: each message entered once, in post order, and never while another was running."""
    by_queue: dict[str, list[dict]] = defaultdict(list)
    for row in log:
        by_queue[row["q"]].append(row)
    assert set(by_queue) == set(posted)
    for queue, rows in by_queue.items():
        assert [r["ev"] for r in rows] == ["enter", "exit"] * (len(rows) // 2), f"overlap in {queue}"
        assert [r["id"] for r in rows[0::2]] == [r["id"] for r in rows[1::2]], f"interleaved in {queue}"
        assert [r["id"] for r in rows[0::2]] == posted[queue], f"order or count wrong in {queue}"


async def post_queues(url: str, queues: int, per_queue: int) -> dict[str, list[str]]:
    """Post `per_queue` messages to each queue: queues concurrently, each queue's messages in sequence."""
    posted: dict[str, list[str]] = {}
    async with rawhttp.pool(url, 32) as connections:

        async def one_queue(q: str) -> None:
            posted[q] = []
            for n in range(per_queue):
                status, answer = await rawhttp.post_json(connections, "/enqueue", {"queue": q, "payload": {"n": n}})
                assert status == 202, answer
                posted[q].append(answer["id"])

        await asyncio.gather(*(one_queue(f"q{i:03d}") for i in range(queues)))
    return posted


def test_200_queues_by_50_messages_all_handled_once_in_post_order(cluster, r, settings):
    """10,000 messages over 200 queues, posted concurrently: each handled exactly once, in order, with history."""
    cluster.start_all()
    posted = asyncio.run(post_queues(cluster.web_url, 200, 50))
    wait_for(lambda: exits(r, settings.prefix) >= 10_000, 180, "10,000 handled messages")
    log = read_log(r, settings.prefix)
    check_order_and_no_overlap(log, posted)
    assert len({row["pid"] for row in log}) == 2, "both worker processes should have handled messages"

    ids = [i for q in posted.values() for i in q]

    def history_done() -> bool:
        with psycopg.connect(settings.database_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM sequential_queue WHERE id = ANY(%s) AND status = 'done' AND attempts = 1",
                (ids,),
            ).fetchone()[0] == len(ids)

    wait_for(history_done, 60, "a done history row, attempts 1, for every message")


def test_slow_queue_does_not_hold_up_another(cluster, r, settings):
    """While queue A's first handler runs (≥1 s, until B is done), queue B's 100 messages all finish."""
    cluster.start_all()
    gate = f"{settings.prefix}:test:b-done"
    a = httpx.post(cluster.web_url + "/enqueue", json={"queue": "A", "payload": {"sleep": 1, "wait_for": gate}})
    assert a.status_code == 202
    wait_for(lambda: any(row["q"] == "A" for row in read_log(r, settings.prefix)), 30, "A's handler to start")
    b = httpx.post(cluster.web_url + "/enqueue", json=[{"queue": "B", "payload": {"n": n}} for n in range(100)])
    assert b.status_code == 202

    def b_done() -> bool:
        return sum(1 for row in read_log(r, settings.prefix) if row["q"] == "B" and row["ev"] == "exit") == 100

    wait_for(b_done, 45, "B's 100 messages while A still runs")
    log = read_log(r, settings.prefix)
    assert not any(row["q"] == "A" and row["ev"] == "exit" for row in log), "A finished before B: B waited"
    r.set(gate, 1)
    wait_for(lambda: exits(r, settings.prefix) == 101, 30, "A to finish")


def test_one_queue_never_runs_in_two_drains_across_processes(cluster, r, settings):
    """With a small drain budget and more queues than slots (2 processes x 1 thread, 3 queues), queues take
    turns and hop between processes; still no two handlers of a queue overlap."""
    cluster.start_all(DRIP_DRAIN_BUDGET="3", DRIP_PROCESSES="2", DRIP_THREADS="1")
    workers = Keys(settings.prefix).workers()
    wait_for(lambda: r.zcard(workers) == 2, 60, "both worker processes to register")
    posted = {}
    for q in ("x", "y", "z"):
        answer = httpx.post(
            cluster.web_url + "/enqueue", json=[{"queue": q, "payload": {"sleep": 0.002}} for _ in range(60)]
        )
        posted[q] = [a["id"] for a in answer.json()]
    wait_for(lambda: exits(r, settings.prefix) == 180, 90, "180 handled messages")
    log = read_log(r, settings.prefix)
    check_order_and_no_overlap(log, posted)
    hopped = [q for q in posted if len({row["pid"] for row in log if row["q"] == q}) == 2]
    assert hopped, "no queue moved between processes, so nothing here tested fencing across them"


def _rabbitmq_answers() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _rabbitmq_answers(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_rabbitmq_as_the_broker(cluster, r, settings):
    """With DRIP_BROKER_URL=amqp://... grants travel through RabbitMQ and messages are handled as with Redis."""
    import pika

    from drip.run.broker import queue_name

    url = "amqp://guest:guest@127.0.0.1:5672/"
    cluster.start_all(DRIP_BROKER_URL=url)
    try:
        answer = httpx.post(cluster.web_url + "/enqueue", json=[{"queue": f"r{i % 5}", "payload": i} for i in range(50)])
        assert answer.status_code == 202
        wait_for(lambda: exits(r, settings.prefix) == 50, 60, "50 messages handled through RabbitMQ grants")
        posted: dict[str, list[str]] = defaultdict(list)
        for a in answer.json():
            posted[a["queue"]].append(a["id"])
        check_order_and_no_overlap(read_log(r, settings.prefix), posted)
    finally:
        cluster.stop()
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        for suffix in ("", ".DQ", ".XQ"):  # dramatiq's queue, delay queue and dead-letter queue
            channel.queue_delete(queue_name(settings) + suffix)
        connection.close()
