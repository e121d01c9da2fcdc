"""A handler that never returns, in real worker processes: its queue is freed at the time limit and the
pool keeps serving everything else while the stuck processes are replaced."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest

from drip.core.keys import Keys
from tests.helpers import wait_for
from tests.sample_handlers import read_log

pytestmark = pytest.mark.slow

REPORT = os.environ.get("DRIP_CHAOS_REPORT")  # a file to append the figures to (for the issue notes)


def test_a_handler_that_sleeps_forever_is_dead_after_its_attempts_and_its_queue_goes_on(cluster, r, settings,
                                                                                       tmp_path, store):
    """timeout_s = 2, max_attempts = 2, a first message whose handler sleeps forever: it is dead-lettered
    'timed out', the queue's next message is handled, and other queues are served throughout."""
    routes = tmp_path / "routes.toml"
    routes.write_text('[[route]]\nqueue = "hung:*"\ntimeout_s = 2\nmax_attempts = 2\n')
    cluster.start_all(DRIP_ROUTES=str(routes))
    wait_for(lambda: len(r.zrange(Keys(settings.prefix).workers(), 0, -1)) == 2, 30, "two worker processes")
    hung, after = httpx.post(cluster.web_url + "/enqueue", json=[
        {"queue": "hung:1", "payload": {"sleep": 3600}}, {"queue": "hung:1", "payload": {"n": 1}}]).json()
    others: list[str] = []
    stop = threading.Event()

    def keep_posting() -> None:  # another queue's traffic, all along
        n = 0
        while not stop.wait(0.2):
            others.append(httpx.post(cluster.web_url + "/enqueue",
                                     json={"queue": f"other:{n % 5}", "payload": {"n": n}}).json()["id"])
            n += 1

    poster = threading.Thread(target=keep_posting, daemon=True)
    poster.start()
    started = time.monotonic()
    try:
        (letter,) = wait_for(lambda: store.dead.list("hung:1"), 90, "the hung message dead-lettered")
        dead_after_s = time.monotonic() - started
        wait_for(lambda: any(row["id"] == after["id"] and row["ev"] == "exit" for row in read_log(r, settings.prefix)),
                 60, "the queue's next message handled")
    finally:
        stop.set()
        poster.join(10)
    assert letter.id == hung["id"] and letter.attempts == 2 and "timed out after 2 s" in letter.error
    handled = {row["id"] for row in read_log(r, settings.prefix) if row["ev"] == "exit"}
    wait_for(lambda: set(others) <= {row["id"] for row in read_log(r, settings.prefix) if row["ev"] == "exit"}, 60,
             "every other message handled")
    posted_while_hung = others[: max(1, int(dead_after_s / 0.2) - 2)]
    assert set(posted_while_hung) & handled, "other queues were served while the handler hung"
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(f"hung handler, timeout_s=2, max_attempts=2: dead after {dead_after_s:.1f} s\n")
