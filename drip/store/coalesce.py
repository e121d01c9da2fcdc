"""Joined calls: requests that store messages while the webhook process's enqueue call to the same
shard is on its way to Redis wait for it, then go together in one call.

Why: under load a webhook request's cost is mostly its round trip's, not its messages' (a connection
from the pool, packing, reading the reply, and Redis's own cost of a script call: the webhook profile
put the script call alone at a quarter of the process's CPU). Requests that arrived during a round
trip share the next one, so that cost is paid once per round trip instead of once per request. A
request that finds no call on its way goes at once: a lone request waits for nothing (the idea of
ioredis's auto-pipelining).

Each request stays all or nothing: a call stores every message of the requests it carries or none
of them. A call refused with HORIZON (a message past DRIP_MAX_HORIZON: nothing of it is stored) is
sent again request by request, so only the request that asked for too much is refused. Requests join
in the order they came, so one answered before another was sent is stored before it, and the queues
see them in that order. A call carries at most `most` messages (DRIP_MAX_BATCH, the most one request
may carry), so joining never makes a script run longer than one request could make it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence

from drip.core.errors import InvalidInput
from drip.core.messages import Inbound
from drip.store.queues import Stored

#: Stores messages with the calls one request would make; its answers, in order (or raises).
Send = Callable[[Sequence[Inbound]], Awaitable[list[Stored]]]


class Coalescer:
    """Joins requests per lane (a shard, or the whole Redis when it is not a cluster): one call on its
    way per lane, and the requests that came meanwhile ride the next one."""

    def __init__(self, send: Send, most: int) -> None:
        self.send = send  #: one request's calls (a test may wrap it to hold a call on its way)
        self._most = most
        #: Per lane with a call on its way, the requests waiting for the next one: (messages, answer).
        self._waiting: dict[Hashable, list[tuple[Sequence[Inbound], asyncio.Future]]] = {}
        self._tasks: set[asyncio.Task] = set()  # the calls sent for waiting requests (kept from the GC)

    async def store(self, lane: Hashable, messages: Sequence[Inbound]) -> list[Stored]:
        """Store one request's messages, all or nothing: at once when no call to `lane` is on its way,
        else with the requests that wait beside it, in the next call."""
        waiting = self._waiting.get(lane)
        if waiting is not None:
            answer = asyncio.get_running_loop().create_future()
            waiting.append((messages, answer))
            return await answer
        self._waiting[lane] = []
        try:
            return await self.send(messages)
        finally:
            self._next(lane)

    def _next(self, lane: Hashable) -> None:
        """The call to `lane` came back: send what waited meanwhile, or mark the lane free."""
        waiting = self._waiting.pop(lane)
        waiting = [(messages, answer) for messages, answer in waiting if not answer.done()]  # gone: cancelled
        if not waiting:
            return
        self._waiting[lane] = []
        task = asyncio.get_running_loop().create_task(self._ride(lane, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ride(self, lane: Hashable, waiting: list[tuple[Sequence[Inbound], asyncio.Future]]) -> None:
        try:
            for group in _groups(waiting, self._most):
                await self._carry(group)
        finally:
            self._next(lane)

    async def _carry(self, group: list[tuple[Sequence[Inbound], asyncio.Future]]) -> None:
        """One call for the group's requests; each request's answer is its share of the reply."""
        try:
            answers = await self.send([m for messages, _ in group for m in messages])
        except InvalidInput as exc:
            if len(group) == 1:
                _fail(group, exc)
                return
            for messages, answer in group:  # nothing was stored: each on its own, so a refusal stays its own
                await _answer(answer, self.send(messages))
            return
        except BaseException as exc:  # Redis unreachable, a write not replicated, ...: for every request
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise  # the process is stopping
            return
        start = 0
        for messages, answer in group:
            if not answer.done():
                answer.set_result(answers[start:start + len(messages)])
            start += len(messages)


def _groups(waiting: list, most: int) -> list[list]:
    """The waiting requests in order, cut into calls of at most `most` messages (a request is never cut)."""
    groups: list[list] = []
    size = most
    for ride in waiting:
        if size + len(ride[0]) > most:
            groups.append([])
            size = 0
        groups[-1].append(ride)
        size += len(ride[0])
    return groups


async def _answer(answer: asyncio.Future, call: Awaitable[list[Stored]]) -> None:
    try:
        result = await call
    except Exception as exc:  # whatever the call raised is this request's answer, as if it had gone alone
        _fail([(None, answer)], exc)
    else:
        if not answer.done():
            answer.set_result(result)


def _fail(group: list, exc: BaseException) -> None:
    for _messages, answer in group:
        if answer.done():
            continue
        if isinstance(exc, Exception):
            answer.set_exception(exc)
        else:
            answer.cancel()  # the process is stopping
