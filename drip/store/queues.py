"""Redis I/O of what a queue holds: enqueue, the schedule (due queues, promotion, cancel),
and pausing. Methods are named after their script (`Queues.promote` runs `lua/promote.lua`).

Multi-step changes always go through a script, so no crash leaves a message in two
places or in none. The webhook's async view of the same enqueue is drip.store.intake;
both build the calls with `enqueue_calls`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import redis

from drip.core.errors import Conflict, InvalidInput, NotFound
from drip.core.keys import SHARDS, Keys, shard_of
from drip.core.layout import Wake
from drip.core.messages import Inbound
from drip.store.connection import read_with_time
from drip.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer to one stored message (or to a duplicate of an earlier one)."""

    id: str
    queue: str
    run_at_ms: int
    duplicate: bool


def enqueue_calls(keys: Keys, messages: Sequence[Inbound], dedup_ttl_ms: int, horizon_ms: int, *,
                  per_shard: bool) -> list[tuple[list[int], list, list]]:
    """The enqueue.lua calls that store one request: (the messages' indexes, KEYS, ARGV) each. One call
    for the whole request (all or nothing), or, on a cluster, where a script touches one slot, one per
    shard (all or nothing per shard). Shared by the sync and async stores."""
    groups: dict[int, list[int]] = {}
    for index, m in enumerate(messages):
        groups.setdefault(shard_of(m.queue) if per_shard else 0, []).append(index)
    calls = []
    for indexes in groups.values():
        key_list: list = []
        args: list = [len(indexes), dedup_ttl_ms, keys.wake_channel(), horizon_ms]
        for index in indexes:
            m = messages[index]
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
        calls.append((indexes, key_list, args))
    return calls


def stored(messages: Sequence[Inbound], calls: list[tuple[list[int], list, list]], replies: list,
           horizon_ms: int) -> list[Stored]:
    """enqueue.lua's replies (per message: layout.STORED) as the answers, in the request's order. A call
    refused with HORIZON (nothing of it stored) is the 400 naming the field that set that message's time."""
    answers: list = [None] * len(messages)
    for (indexes, _keys, _args), reply in zip(calls, replies, strict=True):
        if isinstance(reply, redis.exceptions.ResponseError):
            if not str(reply).startswith("HORIZON "):
                raise reply
            raise InvalidInput(
                f"this message would run more than {horizon_ms // 1000} s ahead (DRIP_MAX_HORIZON): its queue's "
                "drip chain already reaches that far", messages[indexes[int(str(reply).split()[1]) - 1]].timing_field)
        if isinstance(reply, Exception):
            raise reply
        for index, row in zip(indexes, reply, strict=True):
            m = messages[index]
            answers[index] = Stored(id=row[0].decode(), queue=m.queue, run_at_ms=int(row[1]), duplicate=bool(row[2]))
    return answers


class Cancel(Enum):
    """What cancelling a message by id found."""

    CANCELLED = "cancelled"  # it was scheduled and is cancelled now
    ALREADY_CANCELLED = "already cancelled"
    PROMOTED = "promoted"  # no longer scheduled: promoted into its stream (within the last hour)
    NOT_SCHEDULED = "not scheduled"  # Redis does not know it as scheduled: unknown, or long gone


def message_uuid(message_id: str) -> str:
    """The id in canonical form; NotFound for what cannot be a drip message id."""
    try:
        return str(uuid.UUID(message_id))
    except ValueError:
        raise NotFound(f"no message {message_id!r}: drip's message ids are UUIDs") from None


def find_calls(keys: Keys, message_id: str) -> list[tuple[str, str, str]]:
    """Per shard, the (command, key, id) reads that find a scheduled message by id: its scheduled-ids
    entry, and whether it was cancelled or promoted within the hour (the id names no queue, hence no shard)."""
    return [(command, key, message_id) for shard in range(SHARDS)
            for command, key in (("HGET", keys.scheduled_ids(shard)), ("ZSCORE", keys.cancelled(shard)),
                                 ("ZSCORE", keys.promoted(shard)))]


def found(replies: list) -> tuple[str | None, Cancel | None]:
    """The replies of find_calls as (the queue of the scheduled message, or None with what became of it)."""
    where = next((w for w in replies[0::3] if w), None)
    if where:
        return where.split(b"\n", 1)[0].decode(), None
    if any(s is not None for s in replies[1::3]):
        return None, Cancel.ALREADY_CANCELLED
    if any(s is not None for s in replies[2::3]):
        return None, Cancel.PROMOTED
    return None, Cancel.NOT_SCHEDULED


def cancel_call(keys: Keys, queue: str, message_id: str) -> tuple[list, list]:
    """KEYS and ARGV of cancel.lua."""
    shard = shard_of(queue)
    return ([keys.scheduled_ids(shard), keys.delayed(queue), keys.bodies(queue), keys.due(shard),
             keys.events(shard), keys.cancelled(shard)], [message_id, queue])


def cancelled(queue: str, reply: int) -> tuple[Cancel, str | None]:
    """cancel.lua's reply: cancelled, or promoted between finding it and the script."""
    return (Cancel.CANCELLED, queue) if reply else (Cancel.PROMOTED, None)


def refusal(message_id: str, outcome: Cancel) -> Conflict | NotFound:
    """The error that tells a caller why `message_id` could not be cancelled."""
    if outcome is Cancel.ALREADY_CANCELLED:
        return Conflict(f"message {message_id} is already cancelled")
    if outcome is Cancel.PROMOTED:
        return Conflict(f"message {message_id} was promoted: only scheduled messages can be cancelled")
    return NotFound(f"no message {message_id} is scheduled")


class Queues:
    """What queues hold: messages in, scheduled messages promoted or cancelled, pause and resume."""

    def __init__(self, scripts: Scripts, keys: Keys, *, dedup_ttl_ms: int, horizon_ms: int) -> None:
        self.scripts = scripts
        self.client = scripts.client
        self.keys = keys
        self.dedup_ttl_ms = dedup_ttl_ms
        self.horizon_ms = horizon_ms

    def enqueue(self, messages: Sequence[Inbound]) -> list[Stored]:
        calls = enqueue_calls(self.keys, messages, self.dedup_ttl_ms, self.horizon_ms, per_shard=self.scripts.cluster)
        replies = self.scripts.run_many("enqueue", [(k, a) for _, k, a in calls], raise_errors=False)
        return stored(messages, calls, replies, self.horizon_ms)

    def due_queues(self, limit: int) -> list[str]:
        """Queues whose earliest scheduled message is due (on Redis's clock), up to `limit` per shard."""
        now, per_shard = read_with_time(self.client, lambda pipe: [
            pipe.zrange(self.keys.due(shard), 0, limit - 1, withscores=True) for shard in range(SHARDS)])
        return [q.decode() for rows in per_shard for q, score in rows if score <= now]

    def promote(self, queues: Sequence[str], limit: int) -> list[int]:
        """Move each queue's due messages (up to `limit` each) into its stream; returns how many per queue."""
        k = self.keys
        replies = self.scripts.run_many("promote", [
            ([k.delayed(queue), k.bodies(queue), k.stream(queue), k.state(queue), k.ready(shard_of(queue)),
              k.due(shard_of(queue)), k.events(shard_of(queue)), k.scheduled_ids(shard_of(queue)),
              k.promoted(shard_of(queue))],
             [queue, limit, k.wake_channel()])
            for queue in queues
        ])
        return [int(n) for n in replies]

    def claim_promotion(self, ttl_ms: int) -> bool:
        """Mark a promote_due run as on its way; False if one already is (or was, within `ttl_ms`)."""
        return bool(self.client.set(self.keys.promoting(), 1, nx=True, px=ttl_ms))

    def promotion_done(self) -> None:
        """Clear the claim and wake the supervisor, which sends the next run at once if more fell due meanwhile."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.keys.promoting())
        pipe.publish(self.keys.wake_channel(), Wake.promotion_done)
        pipe.execute()

    def cancel(self, message_id: str) -> tuple[Cancel, str | None]:
        """Cancel a scheduled message by id: what was found, and its queue when it was cancelled.
        Two round trips: find it (any shard), then remove it with cancel.lua."""
        pipe = self.client.pipeline(transaction=False)
        for command, key, mid in find_calls(self.keys, message_id):
            pipe.execute_command(command, key, mid)
        queue, outcome = found(pipe.execute())
        if queue is None:
            return outcome, None
        return cancelled(queue, self.scripts.run("cancel", *cancel_call(self.keys, queue, message_id)))

    def pause(self, queue: str) -> bool:
        """Stop handing out the queue's messages; False if it was paused already."""
        k, shard = self.keys, shard_of(queue)
        return bool(self.scripts.run("pause", [k.state(queue), k.ready(shard), k.paused(shard)], [queue]))

    def skip(self, queue: str, error: str) -> tuple[str, str]:
        """Send the queue's head to the dead letters with `error` (no lease may be out): (REPLY word, the
        dead message's id or the lease holder, or "" when the queue is empty)."""
        k, shard = self.keys, shard_of(queue)
        reply = self.scripts.run("skip", [k.state(queue), k.stream(queue), k.replays(queue), k.ready(shard),
                                          k.events(shard), k.dead(shard), k.dead_index(shard), k.paused(shard)],
                                 [queue, error, k.wake_channel()])
        return reply[0].decode(), reply[1].decode() if len(reply) > 1 else ""

    def resume(self, queue: str) -> bool:
        """Hand the queue's messages out again; False if it was not paused."""
        k, shard = self.keys, shard_of(queue)
        return bool(self.scripts.run(
            "resume",
            [k.state(queue), k.stream(queue), k.replays(queue), k.ready(shard), k.paused(shard)],
            [queue, k.wake_channel()],
        ))
