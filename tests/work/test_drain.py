"""One drain in-process against real Redis: order, budget, retries, dead letters, fencing, shutdown."""

from __future__ import annotations

import threading
from dataclasses import replace

from drip.core.keys import shard_of
from drip.core.messages import Inbound, Message, new_id
from drip.store import browse
from drip.store.stores import Store
from drip.work.context import DrainContext
from drip.work.drain import drain
from drip.work.renewer import Renewer
from drip.work.routes import Route, Router
from drip.work.standby import drain_and_stand_by
from drip.work.standby_signal import StandbySignal
from tests.helpers import advance, lease, wait_for


def put(store: Store, queue: str, payloads: list[bytes]) -> list[str]:
    return [a.id for a in store.queues.enqueue([Inbound(new_id(), queue, p) for p in payloads])]


def context(settings, store, handler, on_dead: str = "continue", **changes) -> DrainContext:
    """A drain context whose every queue runs `handler` under the (changed) settings."""
    settings = settings.model_copy(update=changes)
    renewer = Renewer(store, ttl_ms=settings.lease_ttl_ms, member="test:1:1")
    route = Route("*", handler, settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms, on_dead)
    return DrainContext(settings, store, Router([], route), renewer, threading.Event(), "test:1:1",
                        StandbySignal(store.workers))


def drain_until_idle(ctx: DrainContext, store: Store, queue: str) -> int:
    """Grant and drain `queue` again and again, as the supervisor would, until it is idle; returns the grants."""
    grants = 0
    while store.client.xlen(store.keys.stream(queue)) + store.client.llen(store.keys.replays(queue)):
        token = f"tok{grants}"
        wait_for(lambda: lease(store, queue, token), 10, "the queue's retry to fall due")
        drain(ctx, queue, token)
        grants += 1
    return grants


class Calls:
    """A handler that records (id, attempt) and fails for ids in `failing`."""

    def __init__(self, failing: set[str] = frozenset()) -> None:
        self.seen: list[tuple[str, int]] = []
        self.failing = failing

    def __call__(self, message: Message) -> None:
        self.seen.append((message.id, message.attempt))
        if message.id in self.failing:
            raise ValueError(f"cannot handle {message.payload}")


def test_handles_in_order_then_releases(store, settings, r):
    """Every message is handled once, in order, and the queue leaves the lease set empty."""
    ids = put(store, "q", [b"%d" % i for i in range(5)])
    assert lease(store, "q", "tok")
    calls = Calls()
    drain(context(settings, store, calls), "q", "tok")
    assert calls.seen == [(i, 1) for i in ids]
    assert r.xlen(store.keys.stream("q")) == 0 and store.workers.survey(1).leases == 0


def test_budget_stops_the_drain_and_puts_the_queue_back_in_line(store, settings, r):
    """After DRIP_DRAIN_BUDGET messages the drain releases; the rest wait in line for the next grant."""
    ids = put(store, "q", [b"1"] * 5)
    assert lease(store, "q", "tok")
    calls = Calls()
    drain(context(settings, store, calls, drain_budget=2), "q", "tok")
    assert [i for i, _ in calls.seen] == ids[:2]
    assert r.zscore(store.keys.ready(shard_of("q")), "q") is not None
    assert r.xlen(store.keys.stream("q")) == 3


def test_failing_message_is_retried_in_place_then_dead_lettered_and_the_queue_goes_on(store, settings, r):
    """The head is retried with attempts 1..max while the queue waits; then dead-lettered; the next one runs."""
    bad, good = put(store, "q", [b'"bad"', b'"good"'])
    calls = Calls(failing={bad})
    ctx = context(settings, store, calls, max_attempts=3)
    assert drain_until_idle(ctx, store, "q") == 3
    assert calls.seen == [(bad, 1), (bad, 2), (bad, 3), (good, 1)]
    (_, dead), = r.xrange(store.keys.dead(shard_of("q")))
    assert dead[b"id"].decode() == bad and b"cannot handle bad" in dead[b"x"] and dead[b"a"] == b"3"
    kinds = [f[b"k"] for _, f in r.xrange(store.keys.events(shard_of("q")))]
    assert kinds.count(b"failed") == 2 and kinds.count(b"dead") == 1 and kinds.count(b"done") == 1


def test_a_failed_attempt_frees_the_slot_until_its_backoff_is_over(store, settings, r):
    """After a failure the lease is released and the queue waits in line with its retry time as its place."""
    bad, = put(store, "q", [b'"bad"'])
    assert lease(store, "q", "tok")
    before = store.redis_now_ms()
    drain(context(settings, store, Calls(failing={bad}), backoff_base_ms=60_000, backoff_max_ms=60_000), "q", "tok")
    assert store.workers.survey(1).leases == 0
    retry_at = r.zscore(store.keys.ready(shard_of("q")), "q")
    assert before <= retry_at <= store.redis_now_ms() + 60_000
    assert not lease(store, "q", "early"), "granted before its backoff was over"


def test_a_message_whose_process_died_every_time_is_dead_lettered_without_running_again(store, settings, r):
    """A poison message: max attempts handed out, none reported back; the next hand-out dead-letters it."""
    poison, good = put(store, "q", [b'"poison"', b'"good"'])
    for attempt in (1, 2):  # each time the holder "dies" mid-handler: its lease is reclaimed
        assert lease(store, "q", f"dies{attempt}")
        taken = advance(store, "q", f"dies{attempt}", worker="w", ttl_ms=5000, ack=None, take=True)
        assert taken.message.attempt == attempt
        r.zadd(store.keys.leases(shard_of("q")), {"q": 0})
        assert store.leases.reclaim_expired() == ["q"]
    assert lease(store, "q", "next")
    calls = Calls()
    drain(context(settings, store, calls, max_attempts=2), "q", "next")
    assert calls.seen == [(good, 1)]
    (_, dead), = r.xrange(store.keys.dead(shard_of("q")))
    assert dead[b"id"].decode() == poison and dead[b"a"] == b"2" and b"process died" in dead[b"x"]


def test_on_dead_pause_pauses_the_queue(store, settings, r):
    """With on_dead = pause the last failure dead-letters the message and pauses the queue; nothing else runs."""
    bad, good = put(store, "q", [b'"bad"', b'"good"'])
    calls = Calls(failing={bad})
    ctx = context(settings, store, calls, on_dead="pause", max_attempts=1)
    assert lease(store, "q", "tok")
    drain(ctx, "q", "tok")
    assert calls.seen == [(bad, 1)]
    assert r.hget(store.keys.state("q"), "paused") == b"1"
    assert r.sismember(store.keys.paused(shard_of("q")), "q")
    assert r.zscore(store.keys.ready(shard_of("q")), "q") is None and store.workers.survey(1).leases == 0
    (row,) = browse.rows(store.client, store.keys, ["q"])
    assert row["state"] == "blocked by a dead head" and row["why"].startswith(f"dead head {bad}: ")
    assert store.queues.resume("q")
    assert r.hget(store.keys.state("q"), "why") is None  # resumed: it waits for nothing
    assert lease(store, "q", "again")
    drain(ctx, "q", "again")
    assert calls.seen == [(bad, 1), (good, 1)]


def test_a_drain_that_lost_its_lease_changes_nothing(store, settings, r):
    """If the lease is reclaimed and re-granted while a handler runs, the old drain's ack is refused and it stops
    (one message per step here: with batches it also runs the rest of its batch, see the next test)."""
    ids = put(store, "q", [b"1", b"2"])
    assert lease(store, "q", "old", ttl_ms=60_000)
    calls = Calls()

    def steal(message: Message) -> None:
        calls(message)
        # Simulate the lease expiring while this handler was stalled, and a new holder taking over.
        r.zadd(store.keys.leases(shard_of("q")), {"q": 0})
        assert store.leases.reclaim_expired() == ["q"]
        assert lease(store, "q", "new")

    drain(context(settings, store, steal, drain_batch=1), "q", "old")
    assert calls.seen == [(ids[0], 1)]
    assert r.xlen(store.keys.stream("q")) == 2, "the stale holder's ack must be refused"
    assert r.hget(store.keys.state("q"), "tok") == b"new"


def test_a_stalled_drain_runs_no_more_of_its_batch_once_its_lease_could_have_expired(store, settings, r):
    """A handler stalls past the lease TTL while the queue is taken over: the rest of the batch is not run,
    and the stale ack is refused."""
    ids = put(store, "q", [b"1", b"2", b"3"])
    calls = Calls()

    def stall(message: Message) -> None:
        calls(message)
        wait_for(lambda: store.leases.reclaim_expired() == ["q"], 10, "the stalled lease to expire and be reclaimed")
        assert lease(store, "q", "new")

    assert lease(store, "q", "old", ttl_ms=300)
    drain(context(settings, store, stall, lease_ttl_ms=300, drain_batch=16), "q", "old")
    assert calls.seen == [(ids[0], 1)]
    assert r.xlen(store.keys.stream("q")) == 3, "the stale holder's ack must be refused"
    assert r.hget(store.keys.state("q"), "tok") == b"new"


def test_shutdown_finishes_the_running_handler_acks_it_and_releases(store, settings, r):
    """With the process stopping, the drain completes the handler in progress, acks it and releases the queue."""
    ids = put(store, "q", [b"1", b"2", b"3"])
    assert lease(store, "q", "tok")
    calls = Calls()
    stopping = threading.Event()

    def stop_during(message: Message) -> None:
        stopping.set()
        calls(message)

    ctx = context(settings, store, stop_during)
    ctx.stopping = stopping
    drain(ctx, "q", "tok")
    assert calls.seen == [(ids[0], 1)]
    assert [f[b"id"].decode() for _, f in r.xrange(store.keys.stream("q"))] == ids[1:]
    assert store.workers.survey(1).leases == 0
    assert r.zscore(store.keys.ready(shard_of("q")), "q") is not None


def test_time_budget_also_stops_the_drain(store, settings):
    """DRIP_DRAIN_BUDGET_MS bounds a drain's time as DRIP_DRAIN_BUDGET bounds its messages."""
    put(store, "q", [b"1"] * 3)
    assert lease(store, "q", "tok")
    calls = Calls()

    def slow(message: Message) -> None:
        calls(message)
        threading.Event().wait(0.005)  # longer than the 1 ms budget, so the budget is spent after one

    drain(context(settings, store, slow, drain_budget_ms=1), "q", "tok")
    assert len(calls.seen) == 1


def test_a_deferral_waits_without_spending_an_attempt(store, settings, r):
    """A handler raising Defer releases the queue until then; the next try is still attempt 1."""
    from drip.core.errors import Defer

    mid, = put(store, "q", [b'"x"'])
    seen = []

    def not_yet_then_ok(message: Message) -> None:
        seen.append(message.attempt)
        if len(seen) < 3:
            raise Defer(0.05, "rate limit")

    ctx = context(settings, store, not_yet_then_ok)
    assert drain_until_idle(ctx, store, "q") == 3
    assert seen == [1, 1, 1]
    assert r.xlen(store.keys.dead(shard_of("q"))) == 0


def test_a_permanent_failure_is_dead_at_once(store, settings, r):
    """A handler raising Permanent sends the message to the dead letters on its first attempt."""
    from drip.core.errors import Permanent

    bad, good = put(store, "q", [b'"bad"', b'"good"'])
    calls = Calls()

    def refuse_bad(message: Message) -> None:
        calls(message)
        if message.id == bad:
            raise Permanent("GHL answered 422: contact not found")

    drain_until_idle(context(settings, store, refuse_bad, max_attempts=5), store, "q")
    assert calls.seen == [(bad, 1), (good, 1)]
    (_, dead), = r.xrange(store.keys.dead(shard_of("q")))
    assert dead[b"a"] == b"1" and b"422" in dead[b"x"]


def test_a_failure_inside_a_batch_acks_the_messages_before_it_and_retries_in_place(store, settings, r):
    """The third of five messages fails once: the first two are acked (not run again), the third is retried
    with attempt 2, then the rest follow in order."""
    ids = put(store, "q", [b"%d" % i for i in range(5)])
    seen: list[tuple[str, int]] = []
    ctx = context(settings, store, _fails_first_attempt_of(ids[2], seen), drain_batch=16, max_attempts=3)
    grants = drain_until_idle(ctx, store, "q")
    assert seen == [(ids[0], 1), (ids[1], 1), (ids[2], 1), (ids[2], 2), (ids[3], 1), (ids[4], 1)]
    assert grants == 2
    done = [e[b"id"].decode() for _, e in r.xrange(store.keys.events(shard_of("q"))) if e[b"k"] == b"done"]
    assert done == ids


def _fails_first_attempt_of(bad: str, seen: list):
    def handler(message: Message) -> None:
        seen.append((message.id, message.attempt))
        if message.id == bad and message.attempt == 1:
            raise ValueError("first attempt fails")
    return handler


def test_a_drain_goes_on_to_the_queues_waiting_in_line_unless_a_grant_waits_for_its_thread(store, settings):
    """After its own queue, a drain leases and drains the others in line, oldest first; not while this
    process has a grant waiting for a thread (that one goes first)."""
    ids = {q: put(store, q, [b"1"]) for q in ("mine", "a", "b")}
    calls = Calls()
    ctx = context(settings, store, calls)
    ctx.waiting = lambda: 1
    assert lease(store, "mine", "tok")
    drain_and_stand_by(ctx, "mine", "tok")
    assert calls.seen == [(ids["mine"][0], 1)]
    ctx.waiting = lambda: 0
    ctx.stand_s = 0.2
    assert lease(store, "a", "tok")
    drain_and_stand_by(ctx, "a", "tok")
    assert calls.seen == [(ids[q][0], 1) for q in ("mine", "a", "b")]
    assert store.workers.survey(1).leases == 0 and store.workers.survey(1).heads == []


def test_a_standing_drain_takes_a_queue_that_gets_in_line_later_without_a_grant(store, settings):
    """After its own queue a drain stands by: a queue that gets in line meanwhile is signalled to it and
    drained on the same thread. Its thread is marked busy until it is done."""
    calls = Calls()
    ctx = context(settings, store, calls, drain_budget_ms=60_000, lease_ttl_ms=30_000)
    store.workers.heartbeat("test:1:1", 60_000)
    ctx.standby.listen(ctx.stopping)
    put(store, "first", [b"1"])
    assert lease(store, "first", "tok")
    thread = threading.Thread(target=drain_and_stand_by, args=(ctx, "first", "tok"), daemon=True)
    try:
        thread.start()
        wait_for(lambda: len(calls.seen) == 1, 10, "the granted queue's message")
        assert store.workers.survey(1).busy == 1
        later = put(store, "later", [b"2"])
        wait_for(lambda: [m for m, _ in calls.seen][1:] == later, 10, "the later queue, taken by the standing drain")
    finally:
        ctx.stopping.set()
        thread.join(10)
    assert not thread.is_alive()
    assert store.workers.survey(1).busy == 0


def test_each_message_is_acked_before_the_next_handler_starts(store, settings, r):
    """Strict acks: when a handler starts, each message before it has left the stream or is acked ahead (a
    mark in Redis, which whatever reads the head next applies), and a head is set."""
    ids = put(store, "q", [b"%d" % i for i in range(4)])
    seen = []

    def look(message: Message) -> None:
        waiting = r.xlen(store.keys.stream("q")) - r.llen(store.keys.acks("q"))
        seen.append((waiting, r.hget(store.keys.state("q"), "head") is not None))

    assert lease(store, "q", "tok")
    drain(context(settings, store, look, drain_batch=16), "q", "tok")
    assert seen == [(4, True), (3, True), (2, True), (1, True)]
    assert not r.exists(store.keys.acks("q")), "the last step applied every ack sent ahead"
    done = [e[b"id"].decode() for _, e in r.xrange(store.keys.events(shard_of("q"))) if e[b"k"] == b"done"]
    assert done == ids


def test_a_handler_raising_rate_limited_waits_without_an_attempt_and_says_why(store, settings, r):
    """drip.RateLimited defers the queue like Defer; the queue's state says it waits for a rate limit."""
    import drip

    put(store, "q", [b'"x"'])
    seen = []

    def limited_once(message: Message) -> None:
        seen.append(message.attempt)
        if len(seen) == 1:
            raise drip.RateLimited(60, "the API answered 429")

    assert lease(store, "q", "tok")
    drain(context(settings, store, limited_once), "q", "tok")
    assert seen == [1]
    assert r.hget(store.keys.state("q"), "why") == b"rate limited: the API answered 429"
    assert r.zscore(store.keys.ready(shard_of("q")), "q") > store.redis_now_ms() + 50_000


def test_a_route_rate_limit_defers_the_queue_once_its_budget_is_spent(store, settings, r):
    """With a budget of 2 a minute, two messages run and the third waits in line, no attempt spent."""
    from drip.store.budgets import Budget

    ids = put(store, "q", [b"1", b"2", b"3"])
    calls = Calls()
    ctx = context(settings, store, calls)
    ctx.router = Router([], replace(ctx.router.default, rate=Budget(2, 60_000)))
    assert lease(store, "q", "tok")
    drain(ctx, "q", "tok")
    assert calls.seen == [(ids[0], 1), (ids[1], 1)]
    assert r.hget(store.keys.state("q"), "why") == b"rate limit: *"
    assert r.hget(store.keys.state("q"), "att") is None, "the third message's attempt was given back"


def test_a_handler_past_its_time_limit_has_failed_that_attempt(store, settings, r):
    """A handler still running Python code at its limit is interrupted: retried, then dead, 'timed out'."""
    ids = put(store, "q", [b'"spin"', b'"next"'])
    seen = []

    def spin_on_first(message: Message) -> None:
        seen.append(message.id)
        while message.id == ids[0]:
            pass

    ctx = context(settings, store, spin_on_first, max_attempts=2)
    ctx.router = Router([], replace(ctx.router.default, timeout_s=0.2))
    watcher_stop = threading.Event()
    ctx.limits.watch(watcher_stop)
    try:
        drain_until_idle(ctx, store, "q")
    finally:
        watcher_stop.set()
    assert seen == [ids[0], ids[0], ids[1]]
    (_, dead), = r.xrange(store.keys.dead(shard_of("q")))
    assert dead[b"id"].decode() == ids[0] and dead[b"x"] == b"timed out after 0.2 s" and dead[b"a"] == b"2"
