"""Joined calls (drip.store.coalesce): requests that arrive while the webhook's call is on its way ride the
next call together, each still all or nothing and answered with its own messages, on real Redis.

Each test holds the first call on its way (a gate in front of the store's send) until the other requests
have joined, so which request rides which call does not depend on the machine's speed."""

from __future__ import annotations

import asyncio

from drip.core.errors import InvalidInput
from drip.core.keys import Keys
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store.connection import REDIS_DOWN, async_redis_client
from drip.store.intake import IntakeStore
from tests.helpers import TcpProxy

HORIZON_MS = 86_400_000


def intake(settings, url: str | None = None, max_batch: int = 1000) -> IntakeStore:
    return IntakeStore(async_redis_client(url or settings.redis_url, timeout_s=2), Keys(settings.prefix),
                       dedup_ttl_ms=60_000, horizon_ms=HORIZON_MS, max_batch=max_batch)


def gate_first_call(store: IntakeStore) -> tuple[list[int], asyncio.Event]:
    """Hold the store's first call until the returned event is set; the list gets each call's message count."""
    calls: list[int] = []
    gate = asyncio.Event()
    send = store.joined.send

    async def held(messages):
        calls.append(len(messages))
        if len(calls) == 1:
            await gate.wait()
        return await send(messages)

    store.joined.send = held
    return calls, gate


def joined_while_held(settings, requests: list[list[Inbound]], max_batch: int = 1000) -> tuple[list[int], list]:
    """The first request's call held on its way, the others sent meanwhile, then the call let go: each
    call's message count, and each request's answers (or the exception it raised)."""
    async def scenario():
        store = intake(settings, max_batch=max_batch)
        calls, gate = gate_first_call(store)
        try:
            tasks = [asyncio.create_task(store.enqueue(messages)) for messages in requests]
            await asyncio.sleep(0)  # every request has started: the first is held, the others wait beside it
            gate.set()
            return calls, await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await store.close()

    return asyncio.run(scenario())


def stream_ids(r, settings, queue: str) -> list[str]:
    return [fields[b"id"].decode() for _, fields in r.xrange(Keys(settings.prefix).stream(queue))]


def test_requests_sent_during_a_call_ride_the_next_one_each_with_its_own_answers(settings, r):
    """50 one-message requests over 5 queues: the first goes alone, the 49 sent while it was on its way go
    in one call; every request is answered with its own message, and each queue holds them in the order
    the requests came."""
    requests = [[Inbound(new_id(), f"q{i % 5}", b"%d" % i)] for i in range(50)]
    calls, answers = joined_while_held(settings, requests)
    assert calls == [1, 49]
    for messages, answer in zip(requests, answers, strict=True):
        assert [(a.id, a.queue, a.duplicate) for a in answer] == [(m.id, m.queue, False) for m in messages]
    for q in range(5):
        assert stream_ids(r, settings, f"q{q}") == [m.id for (m,) in requests[q::5]]


def test_a_joined_call_carries_at_most_max_batch_messages_and_never_cuts_a_request(settings, r):
    """With DRIP_MAX_BATCH 4, six waiting requests of two messages go in three calls of four."""
    requests = [[Inbound(new_id(), "q", b"%d-%d" % (i, j)) for j in range(2)] for i in range(7)]
    calls, answers = joined_while_held(settings, requests, max_batch=4)
    assert calls == [2, 4, 4, 4]
    assert [[a.id for a in answer] for answer in answers] == [[m.id for m in messages] for messages in requests]
    assert stream_ids(r, settings, "q") == [m.id for messages in requests for m in messages]


def test_a_refused_request_in_a_joined_call_is_refused_alone(settings, r):
    """A request whose message would run past the horizon (enqueue.lua refuses the whole call, storing
    nothing) is refused on its own: the requests that rode the same call are stored, in order."""
    past = Inbound(new_id(), "q", b"late", Timing("delay", HORIZON_MS + 60_000), timing_field="delay")
    requests = [[Inbound(new_id(), "q", b"0")], [Inbound(new_id(), "q", b"1")], [past],
                [Inbound(new_id(), "q", b"3")]]
    calls, answers = joined_while_held(settings, requests)
    assert calls == [1, 3, 1, 1, 1], "the joined call refused, then each of its requests alone"
    assert isinstance(answers[2], InvalidInput) and answers[2].field == "delay"
    assert [answers[i][0].id for i in (0, 1, 3)] == [requests[i][0].id for i in (0, 1, 3)]
    assert stream_ids(r, settings, "q") == [requests[i][0].id for i in (0, 1, 3)]


def test_a_request_cancelled_while_waiting_is_not_stored_and_holds_up_no_one(settings, r):
    """A request whose client went away while it waited for the call on its way is dropped before the next
    call; the others are stored."""
    requests = [[Inbound(new_id(), "q", b"%d" % i)] for i in range(3)]

    async def scenario():
        store = intake(settings)
        calls, gate = gate_first_call(store)
        try:
            tasks = [asyncio.create_task(store.enqueue(messages)) for messages in requests]
            await asyncio.sleep(0)
            tasks[1].cancel()
            gate.set()
            return calls, await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await store.close()

    calls, answers = asyncio.run(scenario())
    assert calls == [1, 1]
    assert isinstance(answers[1], asyncio.CancelledError)
    assert stream_ids(r, settings, "q") == [requests[0][0].id, requests[2][0].id]


def test_redis_lost_under_a_joined_call_fails_every_request_in_it_then_calls_go_on(settings, r):
    """The connection cut while the first call is on its way: it and the requests waiting for the next call
    all report Redis down (none is left hanging), and once Redis is back the next request is stored."""
    where = r.connection_pool.connection_kwargs
    proxy = TcpProxy(where.get("host", "127.0.0.1"), where.get("port", 6379))
    requests = [[Inbound(new_id(), "q", b"%d" % i)] for i in range(4)]
    after = [Inbound(new_id(), "q", b"after")]

    async def scenario():
        store = intake(settings, f"redis://127.0.0.1:{proxy.port}/{where.get('db', 0)}")
        calls, gate = gate_first_call(store)
        try:
            tasks = [asyncio.create_task(store.enqueue(messages)) for messages in requests]
            await asyncio.sleep(0)
            proxy.cut()
            gate.set()
            failed = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
            proxy.restore()
            return calls, failed, await store.enqueue(after)
        finally:
            await store.close()

    try:
        calls, failed, stored = asyncio.run(scenario())
    finally:
        proxy.close()
    assert calls == [1, 3, 1]
    assert all(isinstance(exc, REDIS_DOWN) for exc in failed), failed
    assert [a.id for a in stored] == [after[0].id]
    assert stream_ids(r, settings, "q") == [after[0].id]

