"""The renewer against real Redis: it keeps each held lease alive by its token, and a stale grant of the
same queue (a broker's redelivery) neither replaces nor drops the live holder's lease."""

from __future__ import annotations

from drip.core.keys import shard_of
from drip.work.renewer import Renewer
from tests.helpers import lease, put


def test_a_stale_grant_of_a_held_queue_does_not_take_the_live_leases_renewal(store, r):
    """Holding (q, live) then a stale (q, old) that is dropped: the live lease is still renewed, the stale lost."""
    put(store, "q", 1)
    assert lease(store, "q", "live", ttl_ms=1000)
    renewer = Renewer(store, ttl_ms=60_000, member="test:1:1")
    live = renewer.hold("q", "live")
    stale = renewer.hold("q", "old")
    renewer.beat()
    renewer.drop("q", "old")
    renewer.beat()
    expiry = r.zscore(store.keys.leases(shard_of("q")), "q")
    assert stale.is_set() and not live.is_set()
    assert expiry > store.redis_now_ms() + 50_000, "the live lease was renewed for the renewer's TTL"
    assert renewer.held() == {"q"}
