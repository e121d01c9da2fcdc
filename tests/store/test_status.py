"""The reads behind `drip status`, against real Redis."""

from __future__ import annotations

from drip.store import status
from drip.store.leases import Verdict
from tests.helpers import lease, put, take


def test_a_queue_waiting_out_a_deferral_says_why(store):
    """A queue whose place in line is ahead shows what it waits for (a deferral, a retry, a rate limit)."""
    put(store, "q", 2)
    put(store, "now", 1)
    assert lease(store, "q", "t")
    assert store.leases.defer(take(store, "q", "t"), "t", 60_000, "rate limit: wa:*") == Verdict.DEFERRED
    rows = {row["queue"]: row for row in status.overview(store.client, store.keys)["queues"]}
    assert rows["q"]["waits_for"] == "rate limit: wa:*" and rows["q"]["waiting_since_ms"] < 0
    assert rows["now"]["waits_for"] is None
