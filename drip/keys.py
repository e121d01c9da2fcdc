"""Every Redis key and channel name drip uses; pure functions, no I/O.

A queue belongs to shard crc32(queue) mod SHARDS, and all its keys carry that
shard's hash tag, as do the shard's indexes (ready queues, leases, events): so
each Lua script touches a single Redis Cluster slot.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

#: Fixed forever for a given prefix: changing it would move queues between shards.
SHARDS = 16


def shard_of(queue: str) -> int:
    """The shard a queue lives in (stable across processes and Python versions)."""
    return zlib.crc32(queue.encode()) % SHARDS


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (DRIP_PREFIX); tests use their own prefix to isolate themselves."""

    prefix: str

    def tag(self, shard: int) -> str:
        return f"{{{self.prefix}:{shard}}}"

    # --- per queue ---------------------------------------------------------
    def stream(self, queue: str) -> str:
        """Stream of the queue's ready messages, in handling order."""
        return f"{self.tag(shard_of(queue))}:q:{queue}"

    def state(self, queue: str) -> str:
        """Hash of the queue's lease (tok, exp, who), head in progress (head, att) and drip tail (tail)."""
        return f"{self.tag(shard_of(queue))}:s:{queue}"

    def front(self, queue: str) -> str:
        """List of messages replayed to the head of the queue ("<id>\\n<enqueued>\\n<run_at>\\n<payload>"),
        handed out before the stream."""
        return f"{self.tag(shard_of(queue))}:f:{queue}"

    def delayed(self, queue: str) -> str:
        """Sorted set of the queue's scheduled messages ("<seq><id>" members), scored by run_at (ms)."""
        return f"{self.tag(shard_of(queue))}:d:{queue}"

    def bodies(self, queue: str) -> str:
        """Hash of the scheduled messages' "<enqueued_ms>\\n<payload>", by delayed-set member."""
        return f"{self.tag(shard_of(queue))}:b:{queue}"

    def dedup(self, queue: str, dedup_id: str) -> str:
        """Remembers a dedup_id of a queue for DRIP_DEDUP_TTL_S; the queue's length keeps names unambiguous."""
        return f"{self.tag(shard_of(queue))}:u:{len(queue)}:{queue}:{dedup_id}"

    # --- per shard ---------------------------------------------------------
    def ready(self, shard: int) -> str:
        """Sorted set of queues with ready messages and no lease, scored by when they got in line."""
        return f"{self.tag(shard)}:ready"

    def handed(self, shard: int) -> str:
        """Set of queues the supervisor granted through the broker whose drain has not started yet (its
        first step removes it): each holds a slot the supervisor cannot see otherwise."""
        return f"{self.tag(shard)}:handed"

    def leases(self, shard: int) -> str:
        """Sorted set of leased queues, scored by lease expiry (ms)."""
        return f"{self.tag(shard)}:leases"

    def due(self, shard: int) -> str:
        """Sorted set of queues with scheduled messages, scored by each queue's earliest run_at."""
        return f"{self.tag(shard)}:due"

    def scheduled_ids(self, shard: int) -> str:
        """Hash of scheduled message id → "<queue>\\n<member>", so a message can be cancelled by id."""
        return f"{self.tag(shard)}:ids"

    def cancelled(self, shard: int) -> str:
        """Sorted set of ids cancelled in the last hour, so a repeated cancel is told apart from an unknown id."""
        return f"{self.tag(shard)}:cancelled"

    def sequence(self, shard: int) -> str:
        """Counter that orders scheduled messages with equal run_at by arrival."""
        return f"{self.tag(shard)}:seq"

    def events(self, shard: int) -> str:
        """Stream of history events waiting to be written to PostgreSQL."""
        return f"{self.tag(shard)}:events"

    def dead(self, shard: int) -> str:
        """Stream of dead letters: messages that failed their last attempt."""
        return f"{self.tag(shard)}:dead"

    def dead_index(self, shard: int) -> str:
        """Hash of dead message id → its entry id in the dead-letter stream."""
        return f"{self.tag(shard)}:deadix"

    def paused(self, shard: int) -> str:
        """Set of the shard's paused queues."""
        return f"{self.tag(shard)}:paused"

    # --- global ------------------------------------------------------------
    def leader(self, role: str = "supervisor") -> str:
        """The lease of the one process of `role` that acts (supervisor, recorder); the others stand by."""
        return f"{self.prefix}:leader:{role}"

    def workers(self) -> str:
        """Sorted set of live worker processes ("host:pid:threads"), scored by heartbeat expiry."""
        return f"{self.prefix}:workers"

    def seats(self) -> str:
        """Hash of the worker threads running a drain ("host:pid:threads/n" -> 1), which includes
        standing by between leases to take queues in line themselves: the supervisor counts them busy."""
        return f"{self.prefix}:seats"

    def wake_channel(self) -> str:
        """Pub/sub channel that wakes the supervisor and the worker processes' line bells. Messages say
        why (the first letter): q queues got in line ("q:<queue>" when just that one did), d a new
        earliest run_at, f a thread stopped running drains, p due messages promoted, s a promote_due
        run ended, x leases reclaimed, w a worker process joined."""
        return f"{self.prefix}:wake"

    def rate_bucket(self, client: str) -> str:
        """A client's token bucket for DRIP_RATE_LIMIT (one key: every web process shares it)."""
        return f"{self.prefix}:rate:{client}"

    def ghl_rate(self, location: str) -> str:
        """A location's GoHighLevel request log (the budget; `<key>:meta` holds its counters)."""
        return f"{self.prefix}:ghl:rate:{location}"

    def ghl_fields(self, location: str) -> str:
        """Hash of a location's custom field key → field id, looked up once and cached."""
        return f"{self.prefix}:ghl:fields:{location}"

    def ghl_timezone(self, location: str) -> str:
        """A location's IANA timezone as GoHighLevel reports it (cached)."""
        return f"{self.prefix}:ghl:tz:{location}"

    def ghl_pace(self) -> str:
        """Hash of queue → "<released_ms>:<planned_ms>" of its last GoHighLevel release (for keeping spacing)."""
        return f"{self.prefix}:ghl:pace"

    def clock_offset(self) -> str:
        """Milliseconds added to the wall clock when business hours are judged (rehearsals and tests)."""
        return f"{self.prefix}:clock:offset_ms"

    def promoting(self) -> str:
        """Set while a promote_due run is on its way, so the supervisor does not pile more up."""
        return f"{self.prefix}:promoting"

    def doorbell(self, dramatiq_queue: str) -> str:
        """List rung after sending to a dramatiq queue; that queue's idle consumers block on it."""
        return f"{self.prefix}:doorbell:{dramatiq_queue}"

    def broker_namespace(self) -> str:
        """Namespace of dramatiq's own keys when its broker is Redis."""
        return f"{self.prefix}:dramatiq"

    def all_patterns(self) -> tuple[str, str]:
        """Glob patterns matching every key under this prefix (for tests and `drip reset`-like tools)."""
        return (f"{{{self.prefix}:*", f"{self.prefix}:*")
