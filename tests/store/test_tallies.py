"""Metrics counted in memory and added to Redis: flushes add up, histograms land in their bucket."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from drip.store import tallies


def test_flushes_add_up_in_redis_across_tallies(store):
    """Two processes' tallies flushed twice: Redis holds the sums; a histogram observation lands in its bucket."""
    a, b = tallies.Tally(), tallies.Tally()
    a.count("drip_messages_accepted_total", 2, source="enqueue")
    b.count("drip_messages_accepted_total", 3, source="enqueue")
    a.observe("drip_lag_seconds", 0.03, route="*")
    assert a.flush(store.client, store.keys) == 4 and b.flush(store.client, store.keys) == 1
    a.count("drip_messages_accepted_total", source="enqueue")
    a.flush(store.client, store.keys)
    counts = tallies.read(store.client, store.keys)
    assert counts["drip_messages_accepted_total|source=enqueue"] == 6
    assert counts["drip_lag_seconds_bucket|route=*,le=0.05"] == 1
    assert counts["drip_lag_seconds_count|route=*"] == 1 and counts["drip_lag_seconds_sum|route=*"] == 0.03
    assert a.flush(store.client, store.keys) == 0  # nothing new: no round trip


def test_a_flush_that_cannot_reach_redis_keeps_its_counts(store):
    """Redis unreachable: the counts stay for the next flush instead of being lost."""
    t = tallies.Tally()
    t.count("drip_leases_reclaimed_total", 5)
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert t.flush(nowhere, store.keys) == 0
    assert t.flush(store.client, store.keys) == 1
    assert tallies.read(store.client, store.keys) == {"drip_leases_reclaimed_total|": 5}
