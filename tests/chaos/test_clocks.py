"""Worker hosts whose clocks are off by 30 s, beside ones that are right: leases, grants, retries and
releases are judged on Redis's clock, so nothing changes: one holder per queue, order kept, no early release."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.chaos.test_kills import live_worker_pids, order_report, post_batches
from tests.helpers import wait_for
from tests.sample_handlers import log_key, read_log

pytestmark = pytest.mark.slow

FAKETIME = next(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"), Path("/usr/lib/faketime/libfaketimeMT.so.1"))


def skewed(offset: str) -> dict[str, str]:
    """The environment that runs a process with its wall clock `offset` (e.g. "-30s"); monotonic time stays true."""
    return {"LD_PRELOAD": str(FAKETIME), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def children_of(pid: int) -> set[int]:
    """The processes whose parent is `pid` (a pool's worker processes)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_worker_pools_30_s_behind_and_ahead_change_nothing(cluster, r, settings, tmp_path):
    """2,000 messages over 40 queues, a handler of 20 ms, handled by a pool on the right clock and pools
    30 s behind and ahead: every message once, strict order, no released_early, every pool at work."""
    assert FAKETIME.exists(), "the faketime package is needed (apt-get install faketime; .ci/run installs it)"
    cluster.start_all(DRIP_PROCESSES="1", DRIP_THREADS="2")
    pools = {"behind": cluster.start("worker-behind", "worker", "-p", "1", **skewed("-30s")),
             "ahead": cluster.start("worker-ahead", "worker", "-p", "1", **skewed("+30s"))}
    wait_for(lambda: len(live_worker_pids(r, settings.prefix)) == 3, 30, "three worker processes")
    posted = asyncio.run(post_batches(cluster.web_url, 40, 50, batch=10, sleep=0.02))
    total = sum(len(ids) for ids in posted.values())
    wait_for(lambda: len({row["id"] for row in read_log(r, settings.prefix) if row["ev"] == "exit"}) >= total, 180,
             "every message handled")
    log = read_log(r, settings.prefix)
    duplicates, violations, lost = order_report(log, posted)
    assert (duplicates, violations, lost) == (0, 0, 0)
    worked = {row["pid"] for row in log}
    for name, pool in pools.items():
        assert worked & children_of(pool.pid), f"the pool {name} handled messages"
    early = [name for name in os.listdir(tmp_path) if name.endswith(".log")
             and "released_early" in (tmp_path / name).read_text(errors="replace")]
    assert early == [], f"released_early logged by {early}"
    assert r.llen(log_key(settings.prefix)) >= 2 * total
