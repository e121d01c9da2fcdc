"""Worker processes killed and stopped for real: nothing lost, order kept, a stalled holder changes nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import defaultdict

import pytest

from drip.core.keys import Keys
from tests import rawhttp
from tests.helpers import wait_for
from tests.sample_handlers import log_key, read_log

pytestmark = pytest.mark.slow

REPORT = os.environ.get("DRIP_CHAOS_REPORT")  # a file to append the figures to (for the issue notes)


def live_worker_pids(r, prefix: str) -> list[int]:
    pids = [int(m.decode().split(":")[1]) for m in r.zrange(Keys(prefix).workers(), 0, -1)]
    return [p for p in pids if os.path.exists(f"/proc/{p}")]


async def post_batches(url: str, queues: int, per_queue: int, batch: int = 100,
                       **payload: object) -> dict[str, list[str]]:
    """Post per_queue messages to each queue in arrays of `batch`, each queue's in order; returns ids by queue.
    `payload` goes into every message's payload (e.g. sleep=0.02 for the test handler)."""
    posted: dict[str, list[str]] = defaultdict(list)
    async with rawhttp.pool(url, 8) as connections:
        for start in range(0, per_queue, batch):
            async def one(q: str) -> None:
                items = [{"queue": q, "payload": {"n": n, **payload}}
                         for n in range(start, min(start + batch, per_queue))]
                status, answer = await rawhttp.post_json(connections, "/enqueue", items)
                assert status == 202, answer
                posted[q] += [a["id"] for a in answer]
            await asyncio.gather(*(one(f"k{i:03d}") for i in range(queues)))
    return posted


def order_report(log: list[dict], posted: dict[str, list[str]]) -> tuple[int, int, int]:
    """(duplicates, order violations, lost), by the strict rule: per queue, handler starts walk the post
    order one message at a time, and the only step back allowed is to repeat the message just started
    (its holder died while it ran); each repeat is a duplicate."""
    starts: dict[str, list[str]] = defaultdict(list)
    finished = set()
    for row in log:
        if row["ev"] == "enter":
            starts[row["q"]].append(row["id"])
        else:
            finished.add(row["id"])
    duplicates = violations = 0
    for queue, ids in posted.items():
        position = {mid: i for i, mid in enumerate(ids)}
        last = furthest = -1
        for mid in starts[queue]:
            p = position[mid]
            if p == last:
                duplicates += 1
            elif not (p == furthest + 1 and last == furthest):
                violations += 1
            last, furthest = p, max(furthest, p)
    lost = sum(1 for ids in posted.values() for mid in ids if mid not in finished)
    return duplicates, violations, lost


#: A worker process is killed each time this many more messages have been handled.
KILL_EVERY = 2_500


@pytest.mark.parametrize(("processes", "threads"), [(4, 1), (3, 3)])
def test_20000_messages_while_a_worker_process_is_sigkilled_every_2500_handled(cluster, r, settings, processes,
                                                                               threads):
    """With the default settings every message is handled, each queue's handler starts never go back
    except to repeat the message just started, and a kill repeats at most one message per thread of
    the killed process. Kills are paced by progress, not by the clock, so a fast run is killed as
    often as a slow one.
    """
    started = time.monotonic()
    cluster.start_all(DRIP_LEASE_TTL_MS="1500", DRIP_PROCESSES=str(processes), DRIP_THREADS=str(threads))
    wait_for(lambda: len(live_worker_pids(r, settings.prefix)) == processes, 30, "the worker processes")
    kills = 0
    stop = threading.Event()

    def killer() -> None:
        nonlocal kills
        next_kill = KILL_EVERY
        while next_kill < 20_000 and not stop.wait(0.02):
            pids = live_worker_pids(r, settings.prefix)
            # Keep at least one process alive, so the run never waits on restarts alone.
            if r.llen(log_key(settings.prefix)) // 2 >= next_kill and len(pids) >= 2:
                os.kill(random.choice(pids), signal.SIGKILL)
                kills += 1
                next_kill += KILL_EVERY

    chaos = threading.Thread(target=killer, daemon=True)
    chaos.start()
    try:
        posted = asyncio.run(post_batches(cluster.web_url, 200, 100))
        total = sum(len(ids) for ids in posted.values())
        assert total == 20_000

        def all_finished() -> bool:
            finished = {row["id"] for row in read_log(r, settings.prefix) if row["ev"] == "exit"}
            return len(finished) >= total

        wait_for(lambda: r.llen(log_key(settings.prefix)) >= 2 * total, 600, "20,000 messages handled")
        wait_for(all_finished, 120, "every message handled at least once")
    finally:
        stop.set()
        chaos.join()
    duplicates, violations, lost = order_report(read_log(r, settings.prefix), posted)
    wall = time.monotonic() - started
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(f"sigkill {processes}x{threads}: kills={kills} duplicates={duplicates} lost={lost} violations={violations} "
                    f"wall={wall:.1f}s\n")
    assert kills >= 4, "the run ended before the faults it is about"
    assert lost == 0 and violations == 0
    assert duplicates <= kills * threads


def test_a_holder_stopped_past_its_lease_changes_nothing_when_it_resumes(cluster, r, settings):
    """SIGSTOP the process running a handler until its lease is re-granted, SIGCONT it: no ack, no more
    messages from it; the new holder ran the message again and the queue's order held."""
    cluster.start_all(DRIP_LEASE_TTL_MS="1000")
    wait_for(lambda: len(live_worker_pids(r, settings.prefix)) == 2, 30, "two worker processes")
    import httpx

    answer = httpx.post(cluster.web_url + "/enqueue",
                        json=[{"queue": "s", "payload": {"sleep": 0.5 if n == 0 else 0}} for n in range(20)])
    ids = [a["id"] for a in answer.json()]
    first = wait_for(lambda: next((row for row in read_log(r, settings.prefix) if row["id"] == ids[0]), None), 30,
                     "the first handler to start")
    stalled = first["pid"]
    os.kill(stalled, signal.SIGSTOP)
    try:
        wait_for(lambda: any(row["id"] == ids[0] and row["pid"] != stalled and row["ev"] == "enter"
                             for row in read_log(r, settings.prefix)), 30, "another process to take the queue over")
    finally:
        resumed_at = time.time_ns()
        os.kill(stalled, signal.SIGCONT)
    wait_for(lambda: sum(1 for row in read_log(r, settings.prefix) if row["ev"] == "exit") >= 21, 30,
             "all messages, and the stalled handler's own end")
    log = read_log(r, settings.prefix)
    after = [row for row in log if row["pid"] == stalled and row["t"] > resumed_at and row["ev"] == "enter"]
    assert after == [], "the stalled process took more messages after resuming"
    starts = [row["id"] for row in log if row["ev"] == "enter"]
    assert starts == [ids[0]] + ids, "order: the first message twice (old and new holder), then the rest in order"
    import psycopg

    def recorded() -> tuple | None:
        with psycopg.connect(settings.database_url) as conn:
            return conn.execute("SELECT status, attempts FROM sequential_queue WHERE id = %s", (ids[0],)).fetchone()

    wait_for(lambda: recorded() == ("done", 2), 30, "one done history, from the new holder (attempt 2)")
    wait_for(lambda: b'"event":"renewal_late"' in (cluster.folder / "worker.log").read_bytes(), 30,
             "the stopped process to log that its renewals came late")
