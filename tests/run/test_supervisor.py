"""The supervisor in-process against real Redis; its drain messages are captured instead of sent."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from drip.core.messages import Inbound, new_id
from drip.run import supervisor as supervisor_module
from drip.run.supervisor import Supervisor
from drip.store.leases import Ack, Verdict
from drip.store.stores import Store
from tests.helpers import advance, lease, take, wait_for


class Captured:
    """Stands in for the broker: records the grants and promote_due runs the supervisor sends."""

    def __init__(self) -> None:
        self.grants: list[tuple[str, str]] = []
        self.promotions = 0

    def drains(self, grants: list[tuple[str, str]]) -> None:
        self.grants += grants

    def promote(self) -> None:
        self.promotions += 1

    def queues(self) -> list[str]:
        return [q for q, _ in self.grants]


def put(store: Store, queue: str) -> None:
    store.queues.enqueue([Inbound(id=new_id(), queue=queue, payload=b"1")])


def grant_round(sup: Supervisor) -> int:
    """One round of grants on a fresh survey, as the leader's round makes them; how many were granted."""
    return sup._grant(sup.store.workers.survey(supervisor_module._MAX_HEADS))[0]


def schedule(sup: Supervisor) -> float:
    """The leader's promotion step on a fresh survey: seconds until it would look again."""
    return sup._schedule(sup.store.workers.survey(1))


@contextmanager
def running(sup: Supervisor):
    stop = threading.Event()
    thread = threading.Thread(target=sup.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def test_grants_only_free_slots_oldest_queue_first(store, settings):
    """With 2 slots and 3 queues in line, the 2 oldest are granted; the third when a slot frees."""
    store.workers.heartbeat("host:1:2", 60_000)
    for q in ["c-old", "a-mid", "b-new"]:
        before = store.redis_now_ms()
        wait_for(lambda: store.redis_now_ms() > before, 5, "Redis's clock to tick (distinct times in line)")
        put(store, q)
    sent = Captured()
    sup = Supervisor(settings, store, sent)
    assert grant_round(sup) == 2
    assert sent.queues() == ["c-old", "a-mid"]
    assert grant_round(sup) == 0
    queue, token = sent.grants[0]
    advance(store, queue, token, worker="t", ttl_ms=5000, ack=None, take=False)  # still has its message: back in line
    assert grant_round(sup) == 1
    assert sent.queues()[-1] == "b-new"


def test_no_live_worker_means_no_grant(store, settings):
    """Without a live worker process nothing is granted (no leases expiring unused)."""
    put(store, "q")
    sent = Captured()
    assert grant_round(Supervisor(settings, store, sent)) == 0
    assert sent.grants == []


@pytest.fixture
def idle_leader(store, settings, monkeypatch) -> tuple[Supervisor, Captured]:
    """A supervisor whose timer ticks only once a minute: whatever it does sooner, a wake-up made it do."""
    monkeypatch.setattr(supervisor_module, "TICK_S", 60.0)
    store.workers.heartbeat("host:1:4", 600_000)
    sent = Captured()
    return Supervisor(settings.model_copy(update={"lease_ttl_ms": 600_000}), store, sent), sent


def test_enqueue_wakes_an_idle_supervisor_at_once(store, idle_leader):
    """An idle leader whose timer is a minute away still grants a new queue promptly."""
    sup, sent = idle_leader
    with running(sup):
        wait_for(lambda: sup.leading, 10, "leadership")
        wait_for(lambda: sup._pubsub is not None and sup._next_tick > 0, 10, "the first round")
        put(store, "q")
        wait_for(lambda: sent.queues() == ["q"], 10, "the grant, long before the next timer tick")


def test_one_leader_and_a_standby_that_takes_over(store, settings):
    """Two supervisors: one leads and grants; when it stops, the standby leads."""
    store.workers.heartbeat("host:1:4", 60_000)
    first_sent, second_sent = Captured(), Captured()
    first, second = Supervisor(settings, store, first_sent), Supervisor(settings, store, second_sent)
    with running(first):
        wait_for(lambda: first.leading, 10, "the first supervisor to lead")
        with running(second):
            put(store, "q1")
            wait_for(lambda: first_sent.queues() == ["q1"], 10, "the leader's grant")
            assert not second.leading and second_sent.grants == []
    with running(second):
        wait_for(lambda: second.leading, 10, "the standby to take over")
        put(store, "q2")
        wait_for(lambda: second_sent.queues() == ["q2"], 10, "the new leader's grant")


def test_expired_lease_is_reclaimed_and_granted_again(store, settings):
    """A holder that stopped renewing loses the queue; the supervisor re-grants it with a new token."""
    store.workers.heartbeat("host:1:4", 60_000)
    put(store, "q")
    assert lease(store, "q", "dead-holder", ttl_ms=1)
    take(store, "q", "dead-holder", ttl_ms=1)
    sent = Captured()
    with running(Supervisor(settings, store, sent)):
        wait_for(lambda: sent.queues() == ["q"], 10, "the re-grant")
    assert sent.grants[0][1] != "dead-holder"
    assert take(store, "q", sent.grants[0][1]).message.attempt == 2


@pytest.mark.parametrize("slots", [1, 3])
def test_never_more_leases_than_slots(store, settings, slots):
    """However many queues wait, live leases never exceed the live slots."""
    store.workers.heartbeat(f"host:1:{slots}", 60_000)
    for i in range(10):
        put(store, f"q{i}")
    sup = Supervisor(settings, store, Captured())
    grant_round(sup)
    grant_round(sup)
    assert store.workers.survey(1).leases == slots


def test_a_release_wake_up_does_not_lose_an_armed_promotion(store, idle_leader):
    """Armed for a run_at, the leader still sends promote_due on time when a slot-freed wake-up comes first."""
    from drip.core.timing import Timing

    sup, sent = idle_leader
    with running(sup):
        wait_for(lambda: sup.leading and sup._next_round > 0, 10, "leadership and a first round")
        due_at = store.redis_now_ms() + 500
        store.queues.enqueue([Inbound(new_id(), "later", b"1", Timing("at", due_at))])
        store.queues.enqueue([Inbound(new_id(), "now", b"1")])
        wait_for(lambda: "now" in sent.queues(), 10, "the grant of the queue in line")
        token = dict(sent.grants)["now"]
        step = advance(store, "now", token, worker="t", ttl_ms=5000, ack=None, take=True)
        advance(store, "now", token, worker="t", ttl_ms=5000, ack=Ack(step.entry_id, step.message.id, 1, 2), take=True)
        wait_for(lambda: sent.promotions == 1, 10, "promote_due at the run_at, not at the next minute tick")


def test_threads_running_drains_and_grants_on_their_way_are_not_granted_to(store, settings):
    """A thread running a drain finds queues in line itself, and a grant sent through the broker holds
    a thread until its drain starts (which then marks its thread busy): the supervisor grants only to the
    others. The busy threads of a process that died without leaving are dropped."""
    store.workers.heartbeat("host:1:4", 60_000)
    for q in ("a", "b", "c", "d"):
        put(store, q)
    for thread in ("host:1:4/1", "host:1:4/2", "host:2:8/1"):
        store.workers.busy(thread)
    sent = Captured()
    sup = Supervisor(settings, store, sent)
    assert grant_round(sup) == 2
    assert grant_round(sup) == 0
    queue, token = sent.grants[0]
    store.workers.busy("host:1:4/3")  # the grant's drain starts on a thread of its own...
    advance(store, queue, token, worker="t", ttl_ms=5000, ack=None, take=True)  # ...and takes a first step
    assert grant_round(sup) == 0, "the thread is as busy as before"
    store.workers.idle("host:1:4/1")  # that thread went back to the broker
    assert grant_round(sup) == 1
    assert grant_round(sup) == 0
    assert len(set(sent.queues())) == 3
    assert sorted(store.client.hkeys(store.keys.busy_threads())) == [b"host:1:4/2", b"host:1:4/3"]


def test_a_queue_in_line_wakes_the_supervisor_only_when_a_thread_idles_in_the_broker(store, idle_leader):
    """While every thread runs a drain, a queue in line is left to them; a thread going back to the
    broker gets a round at once."""
    sup, sent = idle_leader
    for n in range(4):
        store.workers.busy(f"host:1:4/{n}")
    with running(sup):
        wait_for(lambda: sup.leading and sup._next_round > 0, 10, "leadership and a first round")
        put(store, "q")
        assert not sup._worth_a_round({b"q"})
        store.workers.idle("host:1:4/0")
        wait_for(lambda: sent.queues() == ["q"], 10, "the grant once a thread is free")


def test_a_queue_whose_retry_falls_due_while_every_thread_runs_a_drain_is_signalled_to_them(store, idle_leader):
    """No thread idles in the broker, so the supervisor grants nothing; when a queue's backoff ends (no
    script announces that) it nudges the standby signals instead, at that time."""
    sup, sent = idle_leader
    for n in range(4):
        store.workers.busy(f"host:1:4/{n}")
    put(store, "q")
    assert lease(store, "q", "t")
    taken = take(store, "q", "t")
    due_at = store.redis_now_ms() + 300
    assert store.leases.defer(taken, "t", 300, "deferred: test") == Verdict.DEFERRED
    wakeups = store.workers.subscribe_wake()
    with running(sup):
        wait_for(lambda: sup.leading and sup._next_round > 0, 10, "leadership and a first round")

        def nudged() -> bool:
            message = wakeups.get_message(ignore_subscribe_messages=True, timeout=0.1)
            return message is not None and message["data"] == b"q" and store.redis_now_ms() >= due_at

        wait_for(nudged, 10, "a nudge once the queue's place has come")
    wakeups.close()
    assert sent.grants == []
