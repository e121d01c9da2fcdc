"""Redis I/O of queue leases: grants and claims, the drain's steps (advance, fail, defer),
renewal and reclaim.

A lease is the right of one drain at a time to change a queue; every script here that
changes a queue checks the lease token first (fencing), so a holder that stalled past
its lease can no longer ack, retry or release.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from drip.core import layout
from drip.core.keys import SHARDS, Keys, shard_of
from drip.core.layout import Reply
from drip.core.messages import Message
from drip.store.connection import read_with_time
from drip.store.scripts import Scripts

#: Queues in line a drain's claim tries at most, oldest first (heads.lua reads two per shard).
_CLAIM_CANDIDATES = 4
#: Soonest-expiring leases per shard one reclaim round looks at (the rest wait for the next round).
_RECLAIM_CANDIDATES = 256
_TAKEN_WIDTH = len(layout.TAKEN)


@dataclass(frozen=True, slots=True)
class Ack:
    """A message its drain finished: acked at once (Leases.ack), or with the drain's next step."""

    entry_id: bytes
    id: str
    started_ms: int
    finished_ms: int


@dataclass(frozen=True, slots=True)
class Taken:
    """A message `advance` handed the drain."""

    entry_id: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Released:
    """`advance` released the lease; `remaining` messages put the queue back in line."""

    remaining: int


class Lost:
    """The lease is no longer this drain's (it expired and was reclaimed)."""


LOST = Lost()


class Verdict(StrEnum):
    """What booking a failure or a deferral of the head did."""

    RETRY = Reply.retry  # released until the retry is due
    DEAD = Reply.dead  # in the dead letters; the queue goes on (or is paused, by its route)
    DEFERRED = "deferred"  # released until it is ready again, no attempt spent
    LOST = Reply.lost  # the lease is gone: nothing was booked


@dataclass(frozen=True, slots=True)
class Claim:
    """A queue a running drain leased for itself, with its first step (Leases.claim, Leases.claim_next)."""

    queue: str
    token: str
    first: list[Taken] | Released  # the first batch, taken with the lease (Released: nothing was left)
    more: bool = False  # other queues waited in line beside it when it was claimed


def mark_of(ack: Ack, next_entry: bytes) -> bytes:
    """An acks list entry (keys.acks): what was acked, its times, and the entry it makes the head."""
    return b"\n".join((ack.entry_id, ack.id.encode(), b"%d" % ack.started_ms, b"%d" % ack.finished_ms, next_entry))


def taken(queue: str, reply: list) -> list[Taken]:
    """advance.lua's "messages" reply (per message: layout.TAKEN) as what the drain handles."""
    return [
        Taken(reply[i], Message(reply[i + 1].decode(), queue, reply[i + 2], int(reply[i + 5]),
                                int(reply[i + 3]), int(reply[i + 4])))
        for i in range(1, len(reply), _TAKEN_WIDTH)
    ]


class Leases:
    """Grants, the drain's steps, renewal and reclaim, on one script runner."""

    def __init__(self, scripts: Scripts, keys: Keys) -> None:
        self.scripts = scripts
        self.client = scripts.client
        self.keys = keys
        #: heads.lua's keys, per call: every shard's line at once, or one call per shard on a cluster.
        lines = [keys.ready(s) for s in range(SHARDS)]
        self._heads_calls = [([line], [_CLAIM_CANDIDATES]) for line in lines] if scripts.cluster else [
            (lines, [_CLAIM_CANDIDATES])]

    def grant(self, grants: dict[int, list[tuple[str, str]]], ttl_ms: int) -> list[tuple[str, str]]:
        """The supervisor's grants: lease queues, grouped by shard ({shard: [(queue, token)]}), each in
        transit until its drain starts; returns the (queue, token) granted."""
        k = self.keys
        replies = self.scripts.run_many("grant", [
            ([k.ready(shard), k.leases(shard), k.in_transit(shard), *(k.state(q) for q, _ in pairs)],
             [ttl_ms, *(x for pair in pairs for x in pair)])
            for shard, pairs in grants.items()
        ])
        tokens = {q: t for pairs in grants.values() for q, t in pairs}
        return [(q.decode(), tokens[q.decode()]) for granted in replies for q in granted]

    def claim(self, queue: str, ttl_ms: int, *, worker: str, take: int) -> Claim | None:
        """Lease `queue` to the caller, a running drain, if it waits in line and its place has come (a
        standby signal named it), and take its first batch of up to `take`; None when another got it
        first. One round trip (advance.lua's claim: the lease as grant.lua gives it, then the step)."""
        token = secrets.token_hex(8)
        first = self.advance(queue, token, worker=worker, ttl_ms=ttl_ms, ack=None, take=take, claim=True)
        return None if first is LOST else Claim(queue, token, first)

    def claim_next(self, ttl_ms: int, *, worker: str, take: int) -> Claim | None:
        """Lease one of the queues that have waited longest in line (if their place has come) to the
        caller, a running drain, as the supervisor would grant it; None when no queue waits. The claim
        says whether other queues waited beside it (else any that gets in line later signals).

        Drains of every process race for the oldest queue when one gets in line; one that loses
        tries the next oldest rather than give up while queues wait (a drain that stops claiming
        sleeps until the next signal, and the line would then shrink only as fast as it signals).
        Two round trips (heads.lua reads every shard's line at once, one call per shard on a
        cluster; advance.lua leases and takes the first batch), one more per race lost."""
        for queue in (heads := self.heads()):
            claim = self.claim(queue, ttl_ms, worker=worker, take=take)
            if claim is not None:
                return replace(claim, more=len(heads) > 1)
        return None

    def heads(self) -> list[str]:
        """Up to _CLAIM_CANDIDATES queues whose place in line has come, oldest first (two per shard read)."""
        replies = self.scripts.run_many("heads", self._heads_calls)
        if len(replies) == 1:
            return [queue.decode() for queue in replies[0][0::2]]
        found = sorted((float(since), queue.decode()) for reply in replies
                       for queue, since in zip(reply[0::2], reply[1::2], strict=True))
        return [queue for _since, queue in found[:_CLAIM_CANDIDATES]]

    def advance(
        self, queue: str, token: str, *, worker: str, ttl_ms: int, ack: Ack | None, take: int, claim: bool = False
    ) -> list[Taken] | Released | Lost:
        """Ack the head just handled (if any), then take up to `take` next messages or, when `take` is 0
        or none is left, release; with `claim`, lease the queue to `token` first (Leases.claim). One round
        trip; the replies of this thread's sent acks are read with it."""
        shard = shard_of(queue)
        k = self.keys
        args: list = [queue, token, ttl_ms, worker, take, k.wake_channel(), "1" if claim else "0"]
        if ack is not None:
            args += [ack.entry_id, ack.id, ack.started_ms, ack.finished_ms]
        reply = self.scripts.run(
            "advance",
            [k.state(queue), k.stream(queue), k.leases(shard), k.ready(shard), k.events(shard), k.replays(queue),
             k.in_transit(shard), k.acks(queue)],
            args,
        )
        kind = reply[0].decode()
        if kind == Reply.messages:
            return taken(queue, reply)
        if kind == Reply.released:
            return Released(int(reply[1]))
        return LOST

    def mark(self, queue: str, token: str, ack: Ack, next_entry: bytes) -> None:
        """Send an ack ahead, making `next_entry` the head, without waiting: one list push, applied by the
        next script that reads the head (advance, ack, fail, defer, reclaim). The reply is read with this
        thread's next call, and the next handler starts at once."""
        self.scripts.send("mark", [self.keys.state(queue), self.keys.acks(queue)],
                          [token, mark_of(ack, next_entry)])

    def ack(self, queue: str, token: str, ack: Ack, next_entry: bytes) -> None:
        """Ack the head and make `next_entry` (the next message of the batch) the head, the acks sent ahead
        applied first, without waiting: the reply is read with this thread's next call, and the next
        handler starts at once."""
        k = self.keys
        self.scripts.send(
            "ack", [k.state(queue), k.stream(queue), k.replays(queue), k.events(shard_of(queue)), k.acks(queue)],
            [queue, token, mark_of(ack, next_entry)])

    def fail(
        self,
        head: Taken,
        token: str,
        *,
        error: str,
        max_attempts: int,
        retry_delay_ms: int,
        started_ms: int = 0,
        finished_ms: int = 0,
        not_run: bool = False,
        on_dead: str = "continue",
        why: str = "",
    ) -> tuple[Verdict, int]:
        """Record a failed attempt of the head: (RETRY, attempts) with the queue released for
        `retry_delay_ms` (on Redis's clock) and `why` shown while it waits, (DEAD, attempts) with the
        message in the dead letters, or (LOST, 0).

        `not_run`: the hand-out found every allowed attempt spent by processes that died
        during it; the message goes to the dead letters without running again.
        """
        queue = head.message.queue
        shard = shard_of(queue)
        k = self.keys
        reply = self.scripts.run(
            "fail",
            [k.state(queue), k.stream(queue), k.replays(queue), k.leases(shard), k.ready(shard), k.events(shard),
             k.dead(shard), k.dead_index(shard), k.paused(shard), k.acks(queue)],
            [queue, token, head.entry_id, head.message.id, error, max_attempts, started_ms, finished_ms,
             "1" if not_run else "0", on_dead, retry_delay_ms, k.wake_channel(), why or f"retry after: {error}"],
        )
        return Verdict(reply[0].decode()), int(reply[1]) if len(reply) > 1 else 0  # fail.lua answers a Reply word

    def defer(self, head: Taken, token: str, delay_ms: int, why: str) -> Verdict:
        """Give the head its attempt back and release the queue for `delay_ms` (on Redis's clock), `why`
        shown while it waits: DEFERRED, or LOST."""
        queue = head.message.queue
        k, shard = self.keys, shard_of(queue)
        deferred = self.scripts.run(
            "defer",
            [k.state(queue), k.leases(shard), k.ready(shard), k.stream(queue), k.replays(queue), k.events(shard),
             k.acks(queue)],
            [queue, token, head.entry_id, delay_ms, k.wake_channel(), why],
        )
        return Verdict.DEFERRED if deferred else Verdict.LOST

    def renew(self, leases: Iterable[tuple[str, str]], ttl_ms: int) -> list[bool]:
        """Extend each (queue, token) lease in one round trip; False where it was lost."""
        replies = self.scripts.run_many("renew", [
            ([self.keys.state(queue), self.keys.leases(shard_of(queue))], [queue, token, ttl_ms])
            for queue, token in leases
        ])
        return [bool(ok) for ok in replies]

    def reclaim_expired(self) -> list[str]:
        """End every expired lease and put its queue back in line; returns the queues reclaimed. The
        soonest-expiring leases of each shard are read with Redis's clock, and reclaim.lua judges again."""
        k = self.keys
        now, per_shard = read_with_time(self.client, lambda pipe: [
            pipe.zrange(k.leases(shard), 0, _RECLAIM_CANDIDATES - 1, withscores=True) for shard in range(SHARDS)])
        expired = {shard: [q.decode() for q, expiry in rows if expiry <= now]
                   for shard, rows in enumerate(per_shard)}
        expired = {shard: queues for shard, queues in expired.items() if queues}
        if not expired:
            return []
        replies = self.scripts.run_many("reclaim", [
            ([k.ready(shard), k.leases(shard), k.in_transit(shard), k.events(shard),
              *(key for q in queues for key in (k.state(q), k.stream(q), k.replays(q), k.acks(q)))],
             [k.wake_channel(), *queues])
            for shard, queues in expired.items()
        ])
        return [q.decode() for reclaimed in replies for q in reclaimed]
