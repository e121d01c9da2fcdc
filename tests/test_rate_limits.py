"""A route's rate limit in real processes: two worker pools share one budget in Redis, queues wait their
turn in order, and no attempt is spent waiting."""

from __future__ import annotations

import os
from collections import defaultdict

import httpx
import pytest

from drip.core.keys import Keys
from tests.helpers import wait_for
from tests.sample_handlers import read_log

pytestmark = pytest.mark.slow

REPORT = os.environ.get("DRIP_CHAOS_REPORT")


def test_a_route_at_20_per_second_shared_by_10_queues_and_two_worker_pools(cluster, r, settings, tmp_path):
    """400 messages over 10 queues of a route at "20/s": in order per queue, every one on its first attempt,
    both pools at work, and no faster than the budget allows (at most 20 starts in any second)."""
    routes = tmp_path / "routes.toml"
    routes.write_text('[[route]]\nqueue = "r:*"\nrate_limit = "20/s"\n')
    cluster.start_all(DRIP_ROUTES=str(routes), DRIP_PROCESSES="1")
    second = cluster.start("worker-2", "worker", "-p", "1", DRIP_ROUTES=str(routes))
    wait_for(lambda: len(r.zrange(Keys(settings.prefix).workers(), 0, -1)) == 2, 30, "two worker pools")
    posted: dict[str, list[str]] = {}
    for q in range(10):
        answer = httpx.post(cluster.web_url + "/enqueue",
                            json=[{"queue": f"r:{q}", "payload": {"n": n}} for n in range(40)]).json()
        posted[f"r:{q}"] = [a["id"] for a in answer]
    wait_for(lambda: sum(1 for row in read_log(r, settings.prefix) if row["ev"] == "exit") >= 400, 120,
             "all 400 handled")
    log = read_log(r, settings.prefix)
    starts = [row for row in log if row["ev"] == "enter"]
    by_queue = defaultdict(list)
    for row in starts:
        by_queue[row["q"]].append(row["id"])
    assert dict(by_queue) == posted, "each message once, in order per queue"
    assert {row["a"] for row in starts} == {1}, "waiting for the budget spent no attempt"
    assert len({row["pid"] for row in starts}) >= 2, "both pools handled messages"
    times = sorted(row["t"] / 1e9 for row in starts)
    span_s = times[-1] - times[0]
    # The budget lets at most 20 through in any 1 s window, so 400 need at least 19 s (half a second spared
    # for the time between a budget's take and the handler's start).
    assert len(times) <= 20 * (span_s + 1.5), f"400 handled in {span_s:.1f} s: faster than 20/s"
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(f"rate limit 20/s, 2 pools: {(len(times) - 20) / span_s:.1f}/s over {span_s:.1f} s\n")
    assert second.poll() is None
