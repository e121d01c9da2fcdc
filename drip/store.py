"""Redis I/O of messages: enqueue, schedule and promote, cancel, history events, and the
reads behind `drip status`. Lease I/O lives in leases.py, which Store extends.

Multi-step changes always go through a script so no crash leaves a message in
two places or in none; methods are named after their script (`Store.promote`
runs `lua/promote.lua`).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

import redis
import redis.asyncio

from drip.config import Settings
from drip.errors import InvalidInput
from drip.keys import SHARDS, Keys, shard_of
from drip.leases import Leases
from drip.messages import Inbound, now_ms
from drip.scripts import AsyncScripts, async_redis_client, redis_client

#: Queues in line a drain's claim tries at most, oldest first (heads.lua reads two per shard).
_CLAIM_CANDIDATES = 4


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer to one stored message (or to a duplicate of an earlier one)."""

    id: str
    queue: str
    run_at_ms: int
    duplicate: bool


def enqueue_call(keys: Keys, messages: Sequence[Inbound], dedup_ttl_ms: int, horizon_ms: int) -> tuple[list, list]:
    """KEYS and ARGV of enqueue.lua for one request (shared by the sync and async stores)."""
    key_list: list = []
    args: list = [len(messages), dedup_ttl_ms, keys.wake_channel(), horizon_ms]
    for m in messages:
        shard = shard_of(m.queue)
        key_list += [
            keys.stream(m.queue), keys.state(m.queue), keys.ready(shard), keys.events(shard),
            keys.delayed(m.queue), keys.bodies(m.queue), keys.due(shard), keys.scheduled_ids(shard),
            keys.sequence(shard),
        ]
        if m.dedup_id is not None:
            key_list.append(keys.dedup(m.queue, m.dedup_id))
        t = m.timing
        spread_point = random.random() if t.kind == "spread" else 0
        args += [m.queue, m.id, m.payload, m.meta(), "1" if m.dedup_id is not None else "0",
                 t.kind, t.low, t.high, spread_point]
    return key_list, args


def stored(messages: Sequence[Inbound], reply: list) -> list[Stored]:
    return [
        Stored(id=row[0].decode(), queue=m.queue, run_at_ms=int(row[1]), duplicate=bool(row[2]))
        for m, row in zip(messages, reply, strict=True)
    ]


def beyond_horizon(messages: Sequence[Inbound], error: redis.exceptions.ResponseError, horizon_ms: int) -> InvalidInput:
    """enqueue.lua's HORIZON error as the 400 naming the field that set that message's time."""
    if not str(error).startswith("HORIZON "):
        raise error
    index = int(str(error).split()[1]) - 1
    return InvalidInput(
        f"this message would run more than {horizon_ms // 1000} s ahead (DRIP_MAX_HORIZON): its queue's drip "
        "chain already reaches that far",
        messages[index].timing_field,
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A queue a running drain leased for itself (Store.claim_next)."""

    queue: str
    token: str
    more: bool  # other queues waited in line beside it when it was claimed


@dataclass(frozen=True, slots=True)
class Survey:
    """What the supervisor decides a round on, read in one round trip."""

    now_ms: int  # Redis's clock
    slots: int  # threads of live worker processes
    leases: int  # live leases
    running: int  # threads of live worker processes running a drain (drip.drain.drain_and_claim)
    handed: int  # grants sent through the broker whose drain has not started
    heads: list[tuple[int, int, str]]  # queues in line as (since_ms, shard, queue), oldest first
    earliest_due_ms: int | None  # earliest run_at of any scheduled message


class AsyncStore:
    """The webhook's view of Redis: store messages, check health. Nothing else runs on that path."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, *, dedup_ttl_ms: int, horizon_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.dedup_ttl_ms = dedup_ttl_ms
        self.horizon_ms = horizon_ms
        self.scripts = AsyncScripts(client, ("enqueue", "ratelimit"))

    @classmethod
    def from_settings(cls, settings: Settings) -> AsyncStore:
        return cls(async_redis_client(settings.redis_url), Keys(settings.prefix),
                   dedup_ttl_ms=settings.dedup_ttl_s * 1000, horizon_ms=settings.max_horizon * 1000)

    async def enqueue(self, messages: Sequence[Inbound]) -> list[Stored]:
        key_list, args = enqueue_call(self.keys, messages, self.dedup_ttl_ms, self.horizon_ms)
        try:
            return stored(messages, await self.scripts.run("enqueue", key_list, args))
        except redis.exceptions.ResponseError as exc:
            raise beyond_horizon(messages, exc, self.horizon_ms) from None

    async def take_token(self, client: str, per_second: float, burst: int) -> int:
        """Take a token from `client`'s bucket: 0, or the ms until one is there."""
        return int(await self.scripts.run("ratelimit", [self.keys.rate_bucket(client)], [per_second / 1000, burst]))

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()


class Store(Leases):
    """Redis I/O for the supervisor, the worker processes and the CLI."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, dedup_ttl_ms: int = 86_400_000, horizon_ms: int = 30 * 86_400_000
    ) -> None:
        super().__init__(client, keys)
        self.dedup_ttl_ms = dedup_ttl_ms
        self.horizon_ms = horizon_ms

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(redis_client(settings.redis_url), Keys(settings.prefix),
                   dedup_ttl_ms=settings.dedup_ttl_s * 1000, horizon_ms=settings.max_horizon * 1000)

    # --- enqueue, schedule, cancel -----------------------------------------
    def enqueue(self, messages: Sequence[Inbound]) -> list[Stored]:
        key_list, args = enqueue_call(self.keys, messages, self.dedup_ttl_ms, self.horizon_ms)
        try:
            return stored(messages, self.run("enqueue", key_list, args))
        except redis.exceptions.ResponseError as exc:
            raise beyond_horizon(messages, exc, self.horizon_ms) from None

    def survey(self, head_limit: int) -> Survey:
        """Slots, leases, up to `head_limit` queues in line per shard, and the earliest due time: one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        pipe.zremrangebyscore(self.keys.workers(), "-inf", now_ms())
        pipe.zrange(self.keys.workers(), 0, -1)
        pipe.hgetall(self.keys.seats())
        for shard in range(SHARDS):
            pipe.zcard(self.keys.leases(shard))
            pipe.zrange(self.keys.ready(shard), 0, head_limit - 1, withscores=True)
            pipe.zrange(self.keys.due(shard), 0, 0, withscores=True)
            pipe.scard(self.keys.handed(shard))
        (seconds, micros), _expired, workers, seats, *per_shard = pipe.execute()
        live = {w.decode() for w in workers}
        gone = [seat for seat in seats if seat.decode().rsplit("/", 1)[0] not in live]
        if gone:  # seats of processes that died without leaving
            self.client.hdel(self.keys.seats(), *gone)
        heads = sorted(
            (int(score), shard, queue.decode())
            for shard, rows in enumerate(per_shard[1::4])
            for queue, score in rows
        )
        earliest = [int(rows[0][1]) for rows in per_shard[2::4] if rows]
        return Survey(
            now_ms=seconds * 1000 + micros // 1000,
            slots=sum(int(w.rsplit(b":", 1)[1]) for w in workers),
            leases=sum(per_shard[0::4]),
            running=len(seats) - len(gone),
            handed=sum(per_shard[3::4]),
            heads=heads,
            earliest_due_ms=min(earliest, default=None),
        )

    def claim(self, queue: str, ttl_ms: int) -> Claim | None:
        """Lease `queue` to the caller, a running drain, if it waits in line and its place has come
        (a ring named it); None when another got it first. One round trip."""
        granted = self.grant({shard_of(queue): [(queue, secrets.token_hex(8))]}, ttl_ms, via_broker=False)
        return Claim(*granted[0], more=False) if granted else None

    def claim_next(self, ttl_ms: int) -> Claim | None:
        """Lease one of the queues that have waited longest in line (if their place has come) to the
        caller, a running drain, as the supervisor would grant it; None when no queue waits. The claim
        says whether other queues waited beside it (else any that gets in line later rings the bell).

        Drains of every process race for the oldest queue when one gets in line; one that loses
        tries the next oldest rather than give up while queues wait (a drain that stops claiming
        sleeps until the next ring, and the line would then shrink only as fast as it is rung).
        Two round trips (heads.lua reads every shard's line at once, grant.lua leases), one more
        per race lost."""
        more, *heads = self.run("heads", [self.keys.ready(s) for s in range(SHARDS)], [_CLAIM_CANDIDATES])
        for queue in heads:
            claim = self.claim(queue.decode(), ttl_ms)
            if claim is not None:
                return replace(claim, more=bool(more))
        return None

    def due_queues(self, limit: int) -> list[str]:
        """Queues whose earliest scheduled message is due (on Redis's clock), up to `limit` per shard."""
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        for shard in range(SHARDS):
            pipe.zrange(self.keys.due(shard), 0, limit - 1, withscores=True)
        (seconds, micros), *per_shard = pipe.execute()
        now = seconds * 1000 + micros // 1000
        return [q.decode() for rows in per_shard for q, score in rows if score <= now]

    def promote(self, queues: Sequence[str], limit: int) -> list[int]:
        """Move each queue's due messages (up to `limit` each) into its stream; returns how many per queue."""
        k = self.keys
        replies = self.run_many("promote", [
            ([k.delayed(queue), k.bodies(queue), k.stream(queue), k.state(queue), k.ready(shard_of(queue)),
              k.due(shard_of(queue)), k.events(shard_of(queue)), k.scheduled_ids(shard_of(queue))],
             [queue, limit, k.wake_channel()])
            for queue in queues
        ])
        return [int(n) for n in replies]

    def claim_promotion(self, ttl_ms: int) -> bool:
        """Mark a promote_due run as on its way; False if one already is (or was, within `ttl_ms`)."""
        return bool(self.client.set(self.keys.promoting(), 1, nx=True, px=ttl_ms))

    def promotion_done(self) -> None:
        """Clear the claim and wake the supervisor, which sends the next run at once if more fell due meanwhile."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.promoting())
        pipe.publish(self.keys.wake_channel(), "s")
        pipe.execute()

    def find_scheduled(self, message_id: str) -> tuple[str | None, bool]:
        """(the queue of a scheduled message or None, whether it was cancelled within the last hour)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.hget(self.keys.scheduled_ids(shard), message_id)
            pipe.zscore(self.keys.cancelled(shard), message_id)
        replies = pipe.execute()
        where = next((w for w in replies[0::2] if w), None)
        return (where.split(b"\n", 1)[0].decode() if where else None), any(s is not None for s in replies[1::2])

    def cancel(self, queue: str, message_id: str) -> bool:
        """Remove a scheduled message; False if it was promoted (or cancelled) meanwhile."""
        k, shard = self.keys, shard_of(queue)
        return bool(self.run(
            "cancel",
            [k.scheduled_ids(shard), k.delayed(queue), k.bodies(queue), k.due(shard), k.events(shard),
             k.cancelled(shard)],
            [message_id, queue],
        ))

    # --- history events -----------------------------------------------------
    def read_events(self, count: int) -> list[tuple[int, bytes, dict]]:
        """Up to `count` events per shard as (shard, entry_id, fields), oldest first. Events leave their
        stream only once recorded, so the head of each stream is always the first one not yet recorded."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.xrange(self.keys.events(shard), count=count)
        return [(shard, entry_id, fields) for shard, entries in enumerate(pipe.execute())
                for entry_id, fields in entries]

    def forget_events(self, last_by_shard: dict[int, bytes]) -> None:
        """Drop each shard's events up to and including the given entry (their rows are committed)."""
        pipe = self.client.pipeline(transaction=False)
        for shard, last in last_by_shard.items():
            ms, seq = last.split(b"-")
            pipe.xtrim(self.keys.events(shard), minid=f"{ms.decode()}-{int(seq) + 1}", approximate=False)
        pipe.execute()

    # --- inspection ---------------------------------------------------------
    def overview(self) -> dict:
        """What `drip status` shows: every queue in line, leased or with scheduled messages; workers; backlogs."""
        now = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.zrange(self.keys.ready(shard), 0, -1, withscores=True)
            pipe.zrange(self.keys.leases(shard), 0, -1, withscores=True)
            pipe.zrange(self.keys.due(shard), 0, -1)
            pipe.xlen(self.keys.events(shard))
            pipe.xlen(self.keys.dead(shard))
            pipe.smembers(self.keys.paused(shard))
        pipe.zrangebyscore(self.keys.workers(), now, "+inf")
        pipe.get(self.keys.leader())
        *per_shard, workers, leader = pipe.execute()
        waiting = {q.decode(): int(score) for rows in per_shard[0::6] for q, score in rows}
        leased = {q.decode(): int(score) for rows in per_shard[1::6] for q, score in rows}
        scheduled_queues = {q.decode() for rows in per_shard[2::6] for q in rows}
        paused = {q.decode() for members in per_shard[5::6] for q in members}
        queues = sorted(waiting.keys() | leased.keys() | scheduled_queues | paused)
        for queue in queues:
            pipe.xlen(self.keys.stream(queue))
            pipe.llen(self.keys.front(queue))
            pipe.hgetall(self.keys.state(queue))
            pipe.zcard(self.keys.delayed(queue))
            pipe.zrange(self.keys.delayed(queue), 0, 0, withscores=True)
        replies = pipe.execute()
        rows = []
        for i, queue in enumerate(queues):
            length, front, state, scheduled, first = replies[5 * i : 5 * i + 5]
            in_flight = 1 if queue in leased and b"head" in state else 0
            rows.append({
                "queue": queue,
                "ready": length + front - in_flight,
                "in_flight": in_flight,
                "scheduled": scheduled,
                "paused": queue in paused,
                "next_run_at_ms": int(first[0][1]) if first else None,
                "attempt": int(state[b"att"]) if b"att" in state else None,
                "lease_holder": state.get(b"who", b"").decode() or None,
                "lease_expires_in_ms": leased[queue] - now if queue in leased else None,
                "waiting_since_ms": now - waiting[queue] if queue in waiting else None,
            })
        return {
            "leader": leader.decode() if leader else None,
            "workers": [w.decode() for w in workers],
            "slots": sum(int(w.rsplit(b":", 1)[1]) for w in workers),
            "leases": len(leased),
            "history_backlog": sum(per_shard[3::6]),
            "dead_letters": sum(per_shard[4::6]),
            "queues": rows,
        }
