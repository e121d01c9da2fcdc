"""drip's Redis layer on a real Redis Cluster: every script lands on the node of its slot, what reads
every shard reads each on its node, and wake-ups reach every node's subscribers."""

from __future__ import annotations

import asyncio

import pytest

from drip.core.errors import InvalidInput
from drip.core.keys import SHARDS, shard_of
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store import status
from drip.store.intake import IntakeStore
from drip.store.leases import Released, Verdict
from drip.store.queues import Cancel
from tests.helpers import ack_of, wait_for

pytestmark = pytest.mark.slow


def queues_on_every_shard() -> list[str]:
    """One queue name per shard (so per-shard calls go to every node)."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < SHARDS:
        found.setdefault(shard_of(f"c{n}"), f"c{n}")
        n += 1
    return [found[s] for s in range(SHARDS)]


def test_a_queue_lives_its_whole_life_on_the_cluster(cluster_store, redis_cluster):
    """Enqueue, claim, take, ack, fail, dead letter, replay, schedule, promote, cancel, status and survey:
    each script runs on the node of its queue's shard."""
    store = cluster_store
    queues = queues_on_every_shard()
    for q in queues:
        store.queues.enqueue([Inbound(new_id(), q, b"1"), Inbound(new_id(), q, b"2")])
    assert len({redis_cluster.master_of(store.keys.stream(q)).port for q in queues}) == 3, "every master has queues"
    claimed = set()
    while (claim := store.leases.claim_next(5000, worker="w", take=2)) is not None:
        first, second = claim.first
        store.leases.ack(claim.queue, claim.token, ack_of(first), second.entry_id)
        verdict, attempts = store.leases.fail(second, claim.token, error="boom", max_attempts=1, retry_delay_ms=0)
        assert (verdict, attempts) == (Verdict.DEAD, 1)
        claimed.add(claim.queue)
    assert claimed == set(queues)
    letters = store.dead.list()
    assert len(letters) == SHARDS and store.dead.replay(letters, to_head=True) == SHARDS
    later, = store.queues.enqueue([Inbound(new_id(), queues[0], b"3", Timing("delay", 60_000))])
    assert store.queues.cancel(later.id) == (Cancel.CANCELLED, queues[0])
    soon, = store.queues.enqueue([Inbound(new_id(), queues[1], b"4", Timing("delay", 1))])
    due = wait_for(lambda: store.queues.due_queues(10), 10, "the scheduled message to fall due")
    assert store.queues.promote(due, 10) == [1]
    overview = status.overview(store.client, store.keys)
    assert {row["queue"] for row in overview["queues"]} == set(queues) and overview["dead_letters"] == 0
    store.workers.heartbeat("host:1:4", 60_000)
    assert store.workers.survey(8).slots == 4


def test_an_array_is_stored_all_or_nothing_per_shard_on_a_cluster(cluster_store):
    """Messages of one shard go in one call; when one shard's call is refused (its drip chain past the
    horizon), that shard stores nothing, the others store theirs, and the 400 names the field."""
    store = cluster_store
    a, b = queues_on_every_shard()[:2]
    assert store.queues.enqueue([Inbound(new_id(), a, b"1", Timing("delay", 29 * 86_400_000))])
    batch = [Inbound(new_id(), b, b"ok"), Inbound(new_id(), a, b"late", Timing("spread", 2 * 86_400_000,
                                                                          2 * 86_400_000), timing_field="[1].x")]
    with pytest.raises(InvalidInput) as refused:
        store.queues.enqueue(batch)
    assert refused.value.field == "[1].x"
    assert store.client.xlen(store.keys.stream(b)) == 1, "the other shard's message was stored"
    assert store.client.zcard(store.keys.delayed(a)) == 1, "the refused shard stored nothing"


def test_the_webhook_store_spreads_an_array_over_the_nodes(cluster_settings):
    """The async store sends one call per shard to the nodes at once and answers in the request's order."""
    queues = queues_on_every_shard()

    async def scenario() -> list:
        intake = IntakeStore.from_settings(cluster_settings)
        try:
            return await intake.enqueue([Inbound(new_id(), q, b"1") for q in queues])
        finally:
            await intake.close()

    answers = asyncio.run(scenario())
    assert [a.queue for a in answers] == queues and not any(a.duplicate for a in answers)


def test_wake_ups_published_on_any_node_reach_a_subscriber(cluster_store):
    """Scripts publish on the wake channel from the node of their shard; plain PUBLISH is cluster-wide."""
    store = cluster_store
    pubsub = store.workers.subscribe_wake()
    try:
        pubsub.get_message(timeout=1)
        for q in queues_on_every_shard():
            store.queues.enqueue([Inbound(new_id(), q, b"1")])
        heard = set()
        wait_for(lambda: heard.update(m["data"] for m in iter(lambda: pubsub.get_message(timeout=0.1), None))
                 or len(heard) >= SHARDS, 10, "a wake-up from every shard")
    finally:
        pubsub.close()


def test_a_lease_released_with_messages_left_puts_its_queue_back_in_line(cluster_store):
    """advance.lua's release on a cluster node: the queue is back in line on its shard."""
    store = cluster_store
    q = queues_on_every_shard()[5]
    store.queues.enqueue([Inbound(new_id(), q, b"1")])
    claim = store.leases.claim(q, 5000, worker="w", take=1)
    assert store.leases.advance(q, claim.token, worker="w", ttl_ms=5000, ack=None, take=0) == Released(1)
    assert store.client.zscore(store.keys.ready(shard_of(q)), q) is not None
