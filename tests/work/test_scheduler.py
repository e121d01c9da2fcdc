"""Scheduling against real Redis: drip chaining, run_at order, promotion, cancellation."""

from __future__ import annotations

import threading

import psycopg
import pytest

from drip.core.errors import Conflict, InvalidInput, NotFound
from drip.core.keys import shard_of
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.operations import queues as operations
from drip.run.supervisor import Supervisor
from drip.store.stores import Store
from drip.work import scheduler
from drip.work.recorder import Recorder
from tests.helpers import wait_for
from tests.run.test_supervisor import Captured, schedule


def put(store: Store, queue: str, timing: Timing = Timing(), n: int = 1, field: str = "x"):
    return store.queues.enqueue([Inbound(new_id(), queue, b'{"n":%d}' % i, timing, timing_field=field) for i in range(n)])


def stream_ids(store: Store, queue: str) -> list[str]:
    return [f[b"id"].decode() for _, f in store.client.xrange(store.keys.stream(queue))]


def wait_until_due(store: Store, run_at_ms: int) -> None:
    wait_for(lambda: store.redis_now_ms() >= run_at_ms, 10, "Redis's clock to reach the run_at")


def test_a_burst_drips_one_by_one_within_the_timeframe(store):
    """300 contacts posted at once get run_at spaced by 50..100 ms, in post order, starting after now."""
    now = store.redis_now_ms()
    accepted = put(store, "loc:1:wf:1", Timing("spread", 50, 100), n=300)
    run_ats = [a.run_at_ms for a in accepted]
    gaps = [b - a for a, b in zip(run_ats, run_ats[1:])]
    assert all(50 <= g <= 100 for g in gaps), (min(gaps), max(gaps))
    assert now + 50 <= run_ats[0] <= store.redis_now_ms() + 100
    assert len(set(gaps)) > 10, "the spacing should be random, not fixed"


def test_chains_continue_across_requests_and_queues_chain_independently(store):
    """A later request continues its queue's chain; another queue starts its own from now."""
    first = put(store, "a", Timing("spread", 1000, 1000), n=3)
    later = put(store, "a", Timing("spread", 1000, 1000))
    other = put(store, "b", Timing("spread", 1000, 1000))
    assert later[0].run_at_ms == first[-1].run_at_ms + 1000
    assert other[0].run_at_ms < first[1].run_at_ms


def test_scheduled_messages_wait_and_are_promoted_in_run_at_order(store):
    """Messages scheduled out of order reach the stream in run_at order once due; equal run_at keep arrival order."""
    now = store.redis_now_ms()
    late, = put(store, "q", Timing("at", now + 300))
    early, = put(store, "q", Timing("at", now + 100))
    tie_1, tie_2 = put(store, "q", Timing("at", now + 200), n=2)
    assert stream_ids(store, "q") == []
    wait_until_due(store, now + 300)
    assert scheduler.promote_due(store.queues) == 4
    assert stream_ids(store, "q") == [early.id, tie_1.id, tie_2.id, late.id]
    assert store.client.zcard(store.keys.delayed("q")) == 0
    assert store.client.zscore(store.keys.due(shard_of("q")), "q") is None
    assert store.client.zscore(store.keys.ready(shard_of("q")), "q") is not None


def test_messages_for_now_wait_behind_a_due_message_not_yet_promoted(store):
    """While a due message still waits in its queue's delayed set, messages for now (every one of
    a request, and of later requests) queue behind it rather than overtake it."""
    now = store.redis_now_ms()
    due, = put(store, "q", Timing("at", now + 50))
    wait_until_due(store, now + 50)
    first, second = put(store, "q", n=2)
    third, = put(store, "q")
    assert stream_ids(store, "q") == []
    assert scheduler.promote_due(store.queues) == 4
    assert stream_ids(store, "q") == [due.id, first.id, second.id, third.id]


def test_promotion_moves_only_what_is_due_and_keeps_the_due_index(store):
    """Only due messages move; the due index then holds the queue's next run_at."""
    now = store.redis_now_ms()
    soon, = put(store, "q", Timing("at", now + 50))
    later, = put(store, "q", Timing("at", now + 600_000))
    wait_until_due(store, now + 50)
    assert scheduler.promote_due(store.queues) == 1
    assert stream_ids(store, "q") == [soon.id]
    assert store.client.zscore(store.keys.due(shard_of("q")), "q") == later.run_at_ms


def test_an_immediate_message_never_jumps_messages_already_due(store):
    """A 'now' message sent while due messages still wait for promotion is handled after them."""
    now = store.redis_now_ms()
    due, = put(store, "q", Timing("at", now + 20))
    wait_until_due(store, now + 20)
    immediate, = put(store, "q")
    assert stream_ids(store, "q") == []
    scheduler.promote_due(store.queues)
    assert stream_ids(store, "q") == [due.id, immediate.id]


def test_an_immediate_message_goes_before_future_ones(store):
    """A 'now' message is not held behind messages whose run_at is still ahead."""
    put(store, "q", Timing("delay", 600_000))
    immediate, = put(store, "q")
    assert stream_ids(store, "q") == [immediate.id]


def test_four_promoters_at_once_move_each_message_exactly_once(store):
    """10,000 due messages over 500 queues, four promote_due running together: each lands in its stream once."""
    due_at = store.redis_now_ms() + 3000  # room to store them all before they fall due
    expected = {}
    for start in range(0, 500, 50):
        batch = [Inbound(new_id(), f"q{i}", b"1", Timing("at", due_at)) for i in range(start, start + 50)
                 for _ in range(20)]
        for a in store.queues.enqueue(batch):
            expected.setdefault(a.queue, []).append(a.id)
    assert sum(store.client.zcard(store.keys.delayed(q)) for q in expected) == 10_000
    wait_until_due(store, due_at)
    barrier = threading.Barrier(4)
    moved = []

    def promoter() -> None:
        barrier.wait()
        moved.append(scheduler.promote_due(store.queues))

    threads = [threading.Thread(target=promoter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(moved) == 10_000
    for queue, ids in expected.items():
        assert stream_ids(store, queue) == ids


def test_cancel_removes_a_scheduled_message_and_keeps_the_others_times(store, settings):
    """A cancelled contact leaves the delayed set; the others keep their run_at; cancelling twice is a conflict."""
    accepted = put(store, "loc:1:wf:1", Timing("spread", 1000, 2000), n=3)
    assert operations.cancel(store, settings.database_url, accepted[1].id, by="test").text.endswith("(queue loc:1:wf:1)")
    left = store.client.zrange(store.keys.delayed("loc:1:wf:1"), 0, -1, withscores=True)
    assert [(m.decode()[16:], int(s)) for m, s in left] == [(a.id, a.run_at_ms) for a in (accepted[0], accepted[2])]
    with pytest.raises(Conflict):
        recorder = Recorder(store, settings.database_url)
        recorder.record_once()
        operations.cancel(store, settings.database_url, accepted[1].id, by="test")


def test_cancel_of_a_promoted_message_is_a_conflict_and_of_an_unknown_one_not_found(store, settings):
    """409 once a message is promoted (and recorded); 404 for an id drip never gave; 404 for a non-UUID."""
    immediate, = put(store, "q")
    Recorder(store, settings.database_url).record_once()
    with pytest.raises(Conflict, match="queued"):
        operations.cancel(store, settings.database_url, immediate.id, by="test")
    with pytest.raises(NotFound):
        operations.cancel(store, settings.database_url, new_id(), by="test")
    with pytest.raises(NotFound):
        operations.cancel(store, settings.database_url, "not-an-id", by="test")


def test_history_follows_scheduled_queued_cancelled(store, settings):
    """History rows move scheduled → queued on promotion, and scheduled → cancelled on cancel."""
    now = store.redis_now_ms()
    promoted, = put(store, "q", Timing("at", now + 20))
    cancelled, = put(store, "q", Timing("delay", 600_000))
    recorder = Recorder(store, settings.database_url)
    recorder.record_once()
    assert statuses(settings, promoted.id, cancelled.id) == ["scheduled", "scheduled"]
    wait_until_due(store, now + 20)
    scheduler.promote_due(store.queues)
    operations.cancel(store, settings.database_url, cancelled.id, by="test")
    recorder.record_once()
    assert statuses(settings, promoted.id, cancelled.id) == ["queued", "cancelled"]


def statuses(settings, *ids: str) -> list[str]:
    with psycopg.connect(settings.database_url) as conn:
        found = dict(conn.execute("SELECT id::text, status FROM sequential_queue WHERE id::text = ANY(%s)",
                                  (list(ids),)).fetchall())
    return [found.get(i) for i in ids]


def test_a_chain_past_the_horizon_is_refused_whole(store):
    """If chaining would push a message past DRIP_MAX_HORIZON the request stores nothing and names the field."""
    tight = Store.connect(store.client, store.keys, horizon_ms=10_000)
    with pytest.raises(InvalidInput) as caught:
        put(tight, "q", Timing("spread", 4000, 4000), n=3, field="customData.TimeFrame")
    assert caught.value.field == "customData.TimeFrame"
    assert store.client.zcard(store.keys.delayed("q")) == 0 and not store.client.exists(store.keys.state("q"))


def test_supervisor_arms_promotion_for_the_earliest_run_at(store, settings):
    """Nothing due: it waits until the earliest run_at; due: it sends promote_due once while one is on its way."""
    store.workers.heartbeat("host:1:1", 60_000)
    sent = Captured()
    sup = Supervisor(settings, store, sent)
    now = store.redis_now_ms()
    put(store, "q", Timing("at", now + 400))
    wait_s = schedule(sup)
    assert 0 < wait_s <= 0.4 and sent.promotions == 0
    wait_until_due(store, now + 400)
    schedule(sup)
    schedule(sup)
    assert sent.promotions == 1
    store.queues.promotion_done()
    schedule(sup)
    assert sent.promotions == 2
