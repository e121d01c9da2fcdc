"""The Lua scripts through Store, against real Redis: leases, fencing, ack, retry, reclaim."""

from __future__ import annotations

import asyncio
import time

import pytest

from drip.core.keys import Keys, shard_of
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store.connection import REDIS_DOWN, async_redis_client, redis_client
from drip.store.intake import IntakeStore
from drip.store.leaders import Leadership
from drip.store.leases import LOST, Ack, Released, Taken, Verdict
from drip.store.stores import Store
from tests.helpers import TcpProxy, ack_of, advance, lease, put, take


def test_enqueue_puts_a_queue_in_line_once(store, r, settings):
    """A queue enters the ready set with its first message and stays there once."""
    keys = Keys(settings.prefix)
    put(store, "q", 3)
    put(store, "q", 2)
    assert r.zrange(keys.ready(shard_of("q")), 0, -1) == [b"q"]
    assert r.xlen(keys.stream("q")) == 5


def test_enqueue_wakes_the_supervisor_only_when_a_queue_gets_in_line(store, r):
    """The wake channel hears one message per call that put queues in line, not one per message:
    the queue's name when it was one queue; "d" when only the due index moved."""
    pubsub = store.workers.subscribe_wake()
    pubsub.get_message(timeout=1)  # subscription confirmation is ignored, but let it arrive
    put(store, "q", 3)
    put(store, "q", 1)
    put(store, "other", 1)
    store.queues.enqueue([Inbound(new_id(), "a", b"1"), Inbound(new_id(), "b", b"1")])
    store.queues.enqueue([Inbound(new_id(), "later", b"1", Timing("at", store.redis_now_ms() + 60_000))])
    got = []
    while (m := pubsub.get_message(timeout=0.5)) is not None:
        got.append(m["data"])
    pubsub.close()
    assert got == [b"q:q", b"q:other", b"q", b"d"]


def test_grant_is_exclusive(store):
    """A leased queue cannot be granted again until released."""
    put(store, "q")
    assert lease(store, "q", "one")
    assert not lease(store, "q", "two")


def test_drain_takes_messages_in_order_and_acks_each(store, r, settings):
    """advance hands out the head, acks it on the next call, and releases when the stream is empty."""
    ids = put(store, "q", 3)
    assert lease(store, "q")
    seen, ack = [], None
    while isinstance(step := take(store, "q", ack=ack), Taken):
        assert step.message.attempt == 1
        seen.append(step.message.id)
        ack = ack_of(step)
    assert seen == ids
    assert isinstance(step, Released) and step.remaining == 0
    keys = Keys(settings.prefix)
    assert r.xlen(keys.stream("q")) == 0
    assert not r.exists(keys.state("q"))
    assert r.zcard(keys.leases(shard_of("q"))) == 0
    kinds = [f[b"k"] for _, f in r.xrange(keys.events(shard_of("q")))]
    assert kinds == [b"queued"] * 3 + [b"done"] * 3


def test_wrong_token_cannot_ack_or_take(store, r, settings):
    """Fencing: a stale token gets LOST and changes nothing."""
    put(store, "q", 2)
    assert lease(store, "q", "right")
    step = take(store, "q", "right")
    assert take(store, "q", "stale", ack=ack_of(step)) is LOST
    assert r.xlen(Keys(settings.prefix).stream("q")) == 2


def test_released_queue_with_messages_goes_back_in_line(store, r, settings):
    """Stopping early (budget) acks the last message and puts the queue back at the end of the line."""
    put(store, "q", 3)
    put(store, "older", 1)
    assert lease(store, "q")
    step = take(store, "q")
    released = take(store, "q", ack=ack_of(step), go=False)
    assert released == Released(2)
    ready = Keys(settings.prefix).ready(shard_of("q"))
    assert r.zscore(ready, "q") is not None
    assert [q for _, _, q in store.workers.survey(10).heads][-1] == "q"


def test_unfinished_head_is_retaken_with_the_next_attempt(store):
    """A holder that dies mid-handler leaves its head; the next holder gets it again, attempt 2."""
    ids = put(store, "q", 2)
    assert lease(store, "q", "first", ttl_ms=1)
    first = take(store, "q", "first", ttl_ms=1)
    time.sleep(0.01)
    assert store.leases.reclaim_expired() == ["q"]
    assert lease(store, "q", "second")
    again = take(store, "q", "second")
    assert again.message.id == first.message.id == ids[0]
    assert again.message.attempt == 2
    assert take(store, "q", "first", ack=ack_of(first)) is LOST


def test_renewed_lease_is_not_reclaimed(store):
    """reclaim ends only leases past their expiry; renew extends only for the holder."""
    put(store, "q")
    assert lease(store, "q", "tok", ttl_ms=1)
    assert store.leases.renew([("q", "tok"), ("q", "stale")], 5000) == [True, False]
    time.sleep(0.01)
    assert store.leases.reclaim_expired() == []


def test_failures_retry_then_dead_letter(store, r, settings):
    """fail says retry until max_attempts, then moves the message to the dead letters; the queue goes on."""
    ids = put(store, "q", 2)
    verdicts = []
    for attempt in range(3):
        assert lease(store, "q", f"tok{attempt}"), "a retry due now is granted again"
        step = take(store, "q", f"tok{attempt}")
        assert step.message.id == ids[0]
        verdicts.append(store.leases.fail(step, f"tok{attempt}", error="boom", max_attempts=3, retry_delay_ms=0,
                                   started_ms=1, finished_ms=2))
    assert verdicts == [("retry", 1), ("retry", 2), ("dead", 3)]
    keys = Keys(settings.prefix)
    (_, dead), = r.xrange(keys.dead(shard_of("q")))
    assert dead[b"id"].decode() == ids[0] and dead[b"x"] == b"boom" and dead[b"a"] == b"3"
    nxt = take(store, "q", "tok2")
    assert nxt.message.id == ids[1] and nxt.message.attempt == 1


def test_live_slots_count_threads_of_live_workers(store):
    """Slots are the threads of workers whose heartbeat has not expired."""
    store.workers.heartbeat("host:1:4", 5000)
    store.workers.heartbeat("host:2:8", 5000)
    store.workers.heartbeat("host:3:16", 1)
    time.sleep(0.01)
    assert store.workers.survey(1).slots == 12
    store.workers.leave("host:2:8")
    assert store.workers.survey(1).slots == 4


def test_leader_election_is_exclusive(store):
    """One supervisor leads; another takes over only after resign (or expiry)."""
    a, b = (Leadership(store.scripts, store.keys, "supervisor", 5000, every_s=0) for _ in range(2))
    assert a.check()
    assert not b.check()
    assert a.check()
    store.scripts.run("resign", [store.keys.leader()], [b.token])  # a token that does not lead resigns nothing
    assert not b.check()
    a.resign()
    assert b.check()


def batch(store: Store, queue: str, token: str, n: int, ack: Ack | None = None) -> list[Taken] | Released:
    return store.leases.advance(queue, token, worker="test", ttl_ms=5000, ack=ack, take=n)


def reclaim_now(store: Store, r, queue: str) -> None:
    """The holder died: expire its lease and reclaim it, as the supervisor would after the TTL."""
    r.zadd(store.keys.leases(shard_of(queue)), {queue: 0})
    assert store.leases.reclaim_expired() == [queue]


def test_a_batch_is_taken_in_one_call_and_each_message_acked_as_it_is_handled(store, r):
    """Up to n messages from the head; each ack makes the next the head; the last rides with the next take."""
    ids = put(store, "q", 5)
    assert lease(store, "q")
    first = batch(store, "q", "tok", 3)
    assert [t.message.id for t in first] == ids[:3] and [t.message.attempt for t in first] == [1, 1, 1]
    for handled, nxt in zip(first, first[1:]):
        store.leases.ack("q", "tok", ack_of(handled), nxt.entry_id)
    rest = batch(store, "q", "tok", 3, ack_of(first[-1]))
    assert [t.message.id for t in rest] == ids[3:]
    assert r.xlen(store.keys.stream("q")) == 2
    store.leases.ack("q", "tok", ack_of(rest[0]), rest[1].entry_id)
    assert batch(store, "q", "tok", 3, ack_of(rest[1])) == Released(0)
    events = r.xrange(store.keys.events(shard_of("q")))
    assert [e[b"id"].decode() for _, e in events if e[b"k"] == b"done"] == ids
    assert not r.exists(store.keys.state("q")), "an idle queue keeps no state"


def test_after_a_holder_dies_mid_batch_the_message_in_hand_is_the_head_and_its_attempt_counts(store, r):
    """The holder acked its first message and died in the second: the next holder starts at the second,
    attempt 2, and the rest of the old batch comes in one batch again, attempt 1."""
    ids = put(store, "q", 6)
    assert lease(store, "q", "dies")
    first = batch(store, "q", "dies", 3)
    store.leases.ack("q", "dies", ack_of(first[0]), first[1].entry_id)  # the second is in hand when it dies
    reclaim_now(store, r, "q")
    assert lease(store, "q", "next")
    rest = batch(store, "q", "next", 4)
    assert [(t.message.id, t.message.attempt) for t in rest] == [(ids[1], 2), (ids[2], 1), (ids[3], 1), (ids[4], 1)]


def test_an_ack_sent_again_after_a_broken_connection_applies_once(store, r):
    """ack.lua is idempotent: the runner sends unread acks again after an outage, and a repeat changes nothing."""
    ids = put(store, "q", 3)
    assert lease(store, "q")
    first = batch(store, "q", "tok", 3)
    for _ in range(2):
        store.leases.ack("q", "tok", ack_of(first[0]), first[1].entry_id)
    rest = batch(store, "q", "tok", 3, ack_of(first[1]))
    assert [t.message.id for t in rest] == ids[2:]
    events = r.xrange(store.keys.events(shard_of("q")))
    assert [e[b"id"].decode() for _, e in events if e[b"k"] == b"done"] == ids[:2]


def marks(store: Store, queue: str, token: str, steps: list[Taken]) -> None:
    """Send the acks of all but the last of `steps` ahead, each making the next the head (as a drain does)."""
    for handled, nxt in zip(steps, steps[1:]):
        store.leases.mark(queue, token, ack_of(handled), nxt.entry_id)
    store.scripts.run("heads", [store.keys.ready(0)], [1])  # a call on the same connection reads the mark's reply


def done_ids(store: Store, r, queue: str) -> list[str]:
    return [e[b"id"].decode() for _, e in r.xrange(store.keys.events(shard_of(queue))) if e[b"k"] == b"done"]


def test_acks_sent_ahead_are_applied_by_the_next_step_in_order(store, r):
    """Marks only queue up; the next step applies them (done events in order, entries gone), then its own ack."""
    ids = put(store, "q", 4)
    assert lease(store, "q")
    first = batch(store, "q", "tok", 3)
    marks(store, "q", "tok", first)
    assert r.xlen(store.keys.stream("q")) == 4 and r.llen(store.keys.acks("q")) == 2
    rest = batch(store, "q", "tok", 3, ack_of(first[-1]))
    assert [(t.message.id, t.message.attempt) for t in rest] == [(ids[3], 1)]
    assert done_ids(store, r, "q") == ids[:3]
    assert r.xlen(store.keys.stream("q")) == 1 and not r.exists(store.keys.acks("q"))


def test_a_holder_that_dies_after_sending_acks_ahead_repeats_only_the_message_in_hand(store, r):
    """Reclaim applies the dead holder's marks: the next holder starts at the message in hand, attempt 2."""
    ids = put(store, "q", 5)
    assert lease(store, "q", "dies")
    first = batch(store, "q", "dies", 4)
    marks(store, "q", "dies", first[:3])  # the third is in hand when it dies
    reclaim_now(store, r, "q")
    assert done_ids(store, r, "q") == ids[:2] and not r.exists(store.keys.acks("q"))
    assert lease(store, "q", "next")
    rest = batch(store, "q", "next", 4)
    assert [(t.message.id, t.message.attempt) for t in rest] == [(ids[2], 2), (ids[3], 1), (ids[4], 1)]


def test_an_ack_sent_ahead_twice_applies_once(store, r):
    """A mark sent again (after a broken connection) matches no head the second time."""
    ids = put(store, "q", 3)
    assert lease(store, "q")
    first = batch(store, "q", "tok", 3)
    for _ in range(2):
        marks(store, "q", "tok", first[:2])
    rest = batch(store, "q", "tok", 3, ack_of(first[1]))
    assert [t.message.id for t in rest] == ids[2:] and done_ids(store, r, "q") == ids[:2]


def test_a_holder_whose_lease_is_gone_leaves_no_acks_behind(store, r):
    """mark.lua is fenced: a stalled holder's marks after its lease was reclaimed are refused, not kept."""
    put(store, "q", 3)
    assert lease(store, "q", "stale")
    first = batch(store, "q", "stale", 3)
    reclaim_now(store, r, "q")
    marks(store, "q", "stale", first)
    assert not r.exists(store.keys.acks("q"))


@pytest.mark.parametrize("booking", ["fail", "defer"])
def test_a_failure_or_deferral_after_acks_sent_ahead_is_booked_against_the_message_in_hand(store, r, booking):
    """fail.lua and defer.lua apply the marks first: the head they book is the failing message."""
    ids = put(store, "q", 3)
    assert lease(store, "q")
    first = batch(store, "q", "tok", 3)
    marks(store, "q", "tok", first[:2])
    if booking == "fail":
        verdict, attempts = store.leases.fail(first[1], "tok", error="boom", max_attempts=3, retry_delay_ms=0)
        assert (verdict, attempts) == (Verdict.RETRY, 1)
    else:
        assert store.leases.defer(first[1], "tok", 0, "deferred: test") == Verdict.DEFERRED
    assert done_ids(store, r, "q") == ids[:1]
    assert lease(store, "q", "next")
    again = batch(store, "q", "next", 3)
    assert [(t.message.id, t.message.attempt) for t in again] == [(ids[1], 2 if booking == "fail" else 1), (ids[2], 1)]


def test_claim_next_leases_the_queue_longest_in_line_and_only_once_its_place_has_come(store, r):
    """A drain's claim takes the oldest queue in line, as the supervisor would; none waits: None."""
    put(store, "first")
    put(store, "second")
    put(store, "later")
    assert lease(store, "later", "t")
    (taken,) = batch(store, "later", "t", 1)
    assert store.leases.defer(taken, "t", 60_000, "deferred: test") == Verdict.DEFERRED  # its place a minute away
    claim = store.leases.claim_next(5000, worker="w", take=2)
    assert claim.queue == "first" and r.hget(store.keys.state("first"), "tok") == claim.token.encode()
    assert claim.more, "second waited beside it"
    assert [(t.message.queue, t.message.attempt) for t in claim.first] == [("first", 1)], "its first batch, taken with it"
    assert store.workers.survey(1).in_transit == 0, "a claim is not a grant waiting in the broker"
    claim = store.leases.claim_next(5000, worker="w", take=2)
    assert claim.queue == "second" and not claim.more
    assert store.leases.claim_next(5000, worker="w", take=2) is None, "a queue whose place is in the future waits for it"
    assert not lease(store, "first", "supervisor"), "a claimed queue is leased like a granted one"


def test_a_claim_takes_only_a_queue_in_line_and_changes_nothing_else(store, r):
    """A claim of a queue leased by another (the supervisor's grant, say), or not in line at all, takes
    nothing and leaves the lease as it was; one of a queue in line leases it, counts its head's attempt
    and takes the batch in the same call."""
    put(store, "held", 2)
    put(store, "free", 2)
    assert lease(store, "held", "theirs")
    assert store.leases.claim("held", 5000, worker="w", take=2) is None
    assert r.hget(store.keys.state("held"), "tok") == b"theirs"
    assert store.leases.claim("nowhere", 5000, worker="w", take=2) is None
    assert not r.exists(store.keys.state("nowhere"))
    claim = store.leases.claim("free", 5000, worker="w", take=2)
    assert [t.message.attempt for t in claim.first] == [1, 1]
    assert r.zscore(store.keys.ready(shard_of("free")), "free") is None
    assert r.zscore(store.keys.leases(shard_of("free")), "free") is not None
    assert store.leases.claim("free", 5000, worker="w", take=2) is None, "a claimed queue is leased once"
    assert store.leases.advance("free", claim.token, worker="w", ttl_ms=5000, ack=None, take=0) == Released(2)


def test_scripts_lost_by_redis_are_loaded_again_and_nothing_runs_twice(store, r):
    """After SCRIPT FLUSH (as after a Redis restart) a batch of script calls loads its script and runs once."""
    put(store, "a")
    put(store, "b")
    r.script_flush()
    granted = store.leases.grant({shard_of("a"): [("a", "ta")], shard_of("b"): [("b", "tb")]}, 5000)
    assert sorted(granted) == [("a", "ta"), ("b", "tb")]
    assert r.hget(store.keys.state("a"), "tok") == b"ta" and r.hget(store.keys.state("b"), "tok") == b"tb"


def test_a_script_call_on_a_cut_connection_reports_redis_down_and_the_next_call_reconnects(store, r, settings):
    """Scripts run on each thread's own connection: when the network cuts it, the call raises a
    REDIS_DOWN error (nothing retried behind the caller's back), and once Redis can be reached again
    the next call reconnects by itself."""
    where = r.connection_pool.connection_kwargs
    proxy = TcpProxy(where.get("host", "127.0.0.1"), where.get("port", 6379))
    try:
        via_proxy = Store.connect(redis_client(f"redis://127.0.0.1:{proxy.port}/{where.get('db', 0)}", timeout_s=2),
                          store.keys)
        put(store, "q", 2)
        assert via_proxy.leases.grant({shard_of("q"): [("q", "tok")]}, 5000) == [("q", "tok")]
        proxy.cut()
        with pytest.raises(REDIS_DOWN):
            advance(via_proxy, "q", "tok", worker="w", ttl_ms=5000, ack=None, take=True)
        proxy.restore()
        step = advance(via_proxy, "q", "tok", worker="w", ttl_ms=5000, ack=None, take=True)
        assert isinstance(step, Taken) and step.message.queue == "q" and step.message.attempt == 1
    finally:
        proxy.close()


def test_the_webhook_store_reports_a_cut_connection_and_its_next_call_reconnects(r, settings):
    """The webhook's script call on a pooled connection: a cut connection raises a REDIS_DOWN error
    and is not handed to the next request half-read; once Redis can be reached again calls succeed."""
    where = r.connection_pool.connection_kwargs
    proxy = TcpProxy(where.get("host", "127.0.0.1"), where.get("port", 6379))

    async def scenario() -> tuple[Exception | None, list]:
        store = IntakeStore(async_redis_client(f"redis://127.0.0.1:{proxy.port}/{where.get('db', 0)}", timeout_s=2),
                           Keys(settings.prefix), dedup_ttl_ms=60_000, horizon_ms=86_400_000)
        try:
            await store.enqueue([Inbound(new_id(), "q", b"1")])
            proxy.cut()
            failed = None
            try:
                await store.enqueue([Inbound(new_id(), "q", b"2")])
            except REDIS_DOWN as exc:
                failed = exc
            proxy.restore()
            return failed, await store.enqueue([Inbound(new_id(), "q", b"3")])
        finally:
            await store.close()

    try:
        failed, stored = asyncio.run(scenario())
    finally:
        proxy.close()
    assert failed is not None, "the call on the cut connection reported Redis down"
    assert len(stored) == 1 and not stored[0].duplicate
    assert r.xlen(Keys(settings.prefix).stream("q")) == 2, "the first and third messages, stored once each"


def test_acks_sent_before_redis_lost_its_scripts_run_again_in_order(store, r):
    """Acks sent without waiting that found no script (SCRIPT FLUSH, as after a restart) are loaded and
    run again in order with the next call: every message acked once, none handed out again."""
    ids = put(store, "q", 4)
    assert lease(store, "q")
    first = batch(store, "q", "tok", 4)
    r.script_flush()
    for handled, nxt in zip(first, first[1:]):
        store.leases.ack("q", "tok", ack_of(handled), nxt.entry_id)
    assert batch(store, "q", "tok", 4, ack_of(first[-1])) == Released(0)
    events = r.xrange(store.keys.events(shard_of("q")))
    assert [e[b"id"].decode() for _, e in events if e[b"k"] == b"done"] == ids
