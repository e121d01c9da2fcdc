"""The renewer against real Redis: it keeps each held lease alive by its token, a stale grant of the
same queue (a broker's redelivery) neither replaces nor drops the live holder's lease, and the busy
marks of its process's threads end up right after Redis was away."""

from __future__ import annotations

from drip.core.keys import shard_of
from drip.store.connection import REDIS_DOWN
from drip.store.stores import Store
from drip.work.renewer import Renewer
from tests.helpers import lease, put, wait_for
from tests.servers import Node, cluster_port


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


def test_a_busy_mark_left_by_a_failed_idle_is_corrected_by_the_next_beat(settings, tmp_path):
    """A thread goes idle while Redis is down (kill -9, data kept on disk): the mark stays in Redis, counted
    busy, and a pool whose threads all count busy is granted nothing. The renewer's next beat removes it,
    and leaves the threads that are busy, and other processes' marks, alone."""
    node = Node(cluster_port(), tmp_path / "redis", cluster=False)
    node.start()
    try:
        store = Store.from_settings(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{node.port}/0"}))
        busy = store.keys.busy_threads()
        renewer = Renewer(store, ttl_ms=60_000, member="test:1:2")
        renewer.busy("test:1:2/1")
        renewer.busy("test:1:2/2")
        store.workers.busy("other:9:1/1")
        node.kill()
        renewer.idle("test:1:2/1")  # Redis is away: the thread goes back to the broker all the same
        node.start()
        assert node.client().hexists(busy, "test:1:2/1"), "the failed idle left the mark in Redis"
        wait_for(lambda: _beats(renewer), 10, "a heartbeat through the reconnected client")
        assert sorted(node.client().hkeys(busy)) == [b"other:9:1/1", b"test:1:2/2"]
    finally:
        node.kill()


def _beats(renewer: Renewer) -> bool:
    try:
        renewer.beat()
        return True
    except REDIS_DOWN:
        return False
