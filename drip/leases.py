"""Redis I/O of queue leases, worker slots and supervisor leadership.

A lease is the right of one drain at a time to change a queue; every script
here that changes a queue checks the lease token first (fencing), so a holder
that stalled past its lease can no longer ack, retry or release.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from drip.keys import SHARDS, shard_of
from drip.messages import Message, now_ms
from drip.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Ack:
    """The message a drain finished, acked by the next `advance` call."""

    entry_id: bytes
    id: str
    started_ms: int
    finished_ms: int


@dataclass(frozen=True, slots=True)
class Taken:
    """`advance` handed the drain its next message."""

    entry_id: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Released:
    """`advance` released the lease; `remaining` messages put the queue back in line."""

    remaining: int


class Lost:
    """The lease is no longer this drain's (it expired and was reclaimed)."""


LOST = Lost()


class Leases(Scripts):
    """Grants, the drain's per-message steps, renewal and reclaim; worker heartbeats; the leader lease."""

    def grant(self, grants: dict[int, list[tuple[str, str]]], ttl_ms: int, *,
              via_broker: bool) -> list[tuple[str, str]]:
        """Lease queues, grouped by shard ({shard: [(queue, token)]}); returns the (queue, token) granted.
        `via_broker`: the supervisor's grants, marked handed until their drains start."""
        now = now_ms()
        replies = self.run_many("grant", [
            ([self.keys.ready(shard), self.keys.leases(shard), self.keys.handed(shard),
              *(self.keys.state(q) for q, _ in pairs)],
             [now, ttl_ms, "1" if via_broker else "0", *(x for pair in pairs for x in pair)])
            for shard, pairs in grants.items()
        ])
        tokens = {q: t for pairs in grants.values() for q, t in pairs}
        return [(q.decode(), tokens[q.decode()]) for granted in replies for q in granted]

    def advance(
        self, queue: str, token: str, *, worker: str, ttl_ms: int, ack: Ack | None, take: bool
    ) -> Taken | Released | Lost:
        """Ack `ack` (if any), then take the next message or, when `take` is false or none is left, release."""
        step = self.advance_batch(queue, token, worker=worker, ttl_ms=ttl_ms, acks=[ack] if ack else [],
                                  take=1 if take else 0)
        return step[0] if isinstance(step, list) else step

    def advance_batch(
        self, queue: str, token: str, *, worker: str, ttl_ms: int, acks: Sequence[Ack], take: int
    ) -> list[Taken] | Released | Lost:
        """Ack `acks` (the head's messages, in order), then take up to `take` next messages or, when `take`
        is 0 or none is left, release. One round trip whatever the counts."""
        shard = shard_of(queue)
        k = self.keys
        args: list = [queue, token, now_ms(), ttl_ms, worker, take, k.wake_channel()]
        for ack in acks:
            args += [ack.entry_id, ack.id, ack.started_ms, ack.finished_ms]
        reply = self.run(
            "advance",
            [k.state(queue), k.stream(queue), k.leases(shard), k.ready(shard), k.events(shard), k.front(queue),
             k.handed(shard)],
            args,
        )
        kind = reply[0]
        if kind == b"messages":
            return [
                Taken(reply[i], Message(reply[i + 1].decode(), queue, reply[i + 2], int(reply[i + 5]),
                                        int(reply[i + 3]), int(reply[i + 4])))
                for i in range(1, len(reply), 6)
            ]
        if kind == b"released":
            return Released(int(reply[1]))
        return LOST

    def fail(
        self,
        taken: Taken,
        token: str,
        *,
        error: str,
        max_attempts: int,
        retry_at_ms: int,
        started_ms: int = 0,
        finished_ms: int = 0,
        not_run: bool = False,
        on_dead: str = "continue",
    ) -> tuple[str, int]:
        """Record a failed attempt: ("retry", attempts) with the queue released until `retry_at_ms`,
        ("dead", attempts) with the message in the dead letters, or ("lost", 0).

        `not_run`: the hand-out found every allowed attempt spent by processes that died
        during it; the message goes to the dead letters without running again.
        """
        queue = taken.message.queue
        shard = shard_of(queue)
        k = self.keys
        reply = self.run(
            "fail",
            [k.state(queue), k.stream(queue), k.front(queue), k.leases(shard), k.ready(shard), k.events(shard),
             k.dead(shard), k.dead_index(shard), k.paused(shard)],
            [queue, token, now_ms(), taken.entry_id, taken.message.id, error, max_attempts, started_ms,
             finished_ms, "1" if not_run else "0", on_dead, retry_at_ms, k.wake_channel()],
        )
        return reply[0].decode(), int(reply[1]) if len(reply) > 1 else 0

    def defer(self, taken: Taken, token: str, ready_at_ms: int) -> bool:
        """Give the head its attempt back and release the queue until `ready_at_ms`; False if the lease is lost."""
        queue = taken.message.queue
        k, shard = self.keys, shard_of(queue)
        return bool(self.run(
            "defer",
            [k.state(queue), k.leases(shard), k.ready(shard)],
            [queue, token, taken.entry_id, ready_at_ms, k.wake_channel()],
        ))

    def renew(self, leases: Iterable[tuple[str, str]], ttl_ms: int) -> list[bool]:
        """Extend each (queue, token) lease in one round trip; False where it was lost."""
        now = now_ms()
        replies = self.run_many("renew", [
            ([self.keys.state(queue), self.keys.leases(shard_of(queue))], [queue, token, now, ttl_ms])
            for queue, token in leases
        ])
        return [bool(ok) for ok in replies]

    def reclaim_expired(self) -> list[str]:
        """End every expired lease and put its queue back in line; returns the queues reclaimed."""
        now = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.zrangebyscore(self.keys.leases(shard), "-inf", now)
        expired = {shard: [q.decode() for q in rows] for shard, rows in enumerate(pipe.execute()) if rows}
        if not expired:
            return []
        replies = self.run_many("reclaim", [
            ([self.keys.ready(shard), self.keys.leases(shard), self.keys.handed(shard),
              *(key for q in queues for key in (self.keys.state(q), self.keys.stream(q), self.keys.front(q)))],
             [now, self.keys.wake_channel(), *queues])
            for shard, queues in expired.items()
        ])
        return [q.decode() for reclaimed in replies for q in reclaimed]

    def pause(self, queue: str) -> bool:
        """Stop handing out the queue's messages; False if it was paused already."""
        k, shard = self.keys, shard_of(queue)
        return bool(self.run("pause", [k.state(queue), k.ready(shard), k.paused(shard)], [queue]))

    def resume(self, queue: str) -> bool:
        """Hand the queue's messages out again; False if it was not paused."""
        k, shard = self.keys, shard_of(queue)
        return bool(self.run(
            "resume",
            [k.state(queue), k.stream(queue), k.front(queue), k.ready(shard), k.paused(shard)],
            [queue, now_ms(), k.wake_channel()],
        ))

    # --- worker processes ---------------------------------------------------
    def heartbeat(self, member: str, ttl_ms: int) -> bool:
        """Announce a live worker process; True when it just joined (the supervisor is then woken)."""
        added = self.client.zadd(self.keys.workers(), {member: now_ms() + ttl_ms}) == 1
        if added:
            self.client.publish(self.keys.wake_channel(), "w")
        return added

    def leave(self, member: str) -> None:
        seats = [f for f in self.client.hkeys(self.keys.seats()) if f.decode().startswith(member + "/")]
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.keys.workers(), member)
        if seats:
            pipe.hdel(self.keys.seats(), *seats)
        pipe.execute()

    def nudge(self) -> None:
        """Tell the worker processes' line bells that queues wait in line."""
        self.client.publish(self.keys.wake_channel(), "q")

    def seat(self, seat: str) -> None:
        """The thread `seat` ("member/n") runs a drain now: the supervisor counts it busy."""
        self.client.hset(self.keys.seats(), seat, 1)

    def unseat(self, seat: str) -> None:
        """The thread `seat` goes back to the broker: wake the supervisor ("f") to grant to it again."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(self.keys.seats(), seat)
        pipe.publish(self.keys.wake_channel(), "f")
        pipe.execute()

    def elect(self, token: str, ttl_ms: int, role: str = "supervisor") -> bool:
        return bool(self.run("elect", [self.keys.leader(role)], [token, ttl_ms]))

    def resign(self, token: str, role: str = "supervisor") -> None:
        self.run("resign", [self.keys.leader(role)], [token])

    def subscribe_wake(self) -> redis.client.PubSub:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.keys.wake_channel())
        return pubsub
