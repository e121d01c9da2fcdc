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
        """Hash of the queue's lease, head in progress, drip tail and pause (fields: drip.core.layout.State)."""
        return f"{self.tag(shard_of(queue))}:s:{queue}"

    def replays(self, queue: str) -> str:
        """The queue's replay list: dead letters replayed to its head ("<id>\\n<enqueued>\\n<run_at>\\n<payload>"),
        handed out before the stream."""
        return f"{self.tag(shard_of(queue))}:f:{queue}"

    def acks(self, queue: str) -> str:
        """List of the acks its drain sent ahead (store/lua/mark.lua), applied by the next script that reads
        the head: "<entry_id>\\n<id>\\n<started_ms>\\n<finished_ms>\\n<next_entry_id>"."""
        return f"{self.tag(shard_of(queue))}:a:{queue}"

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

    def in_transit(self, shard: int) -> str:
        """Set of queues granted by the supervisor whose grant is in transit (sent through the broker,
        its drain not started yet; the drain's first step removes it): each holds a thread the
        supervisor cannot see otherwise."""
        return f"{self.tag(shard)}:transit"

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

    def promoted(self, shard: int) -> str:
        """Sorted set of scheduled ids promoted in the last hour, so cancelling one is told apart from an
        unknown id without the history."""
        return f"{self.tag(shard)}:promoted"

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
        """Sorted set of live worker processes ("host:pid:threads"), scored by heartbeat expiry (hash-tagged
        with the busy threads: a heartbeat that corrects its process's busy threads is one script)."""
        return f"{{{self.prefix}:workers}}"

    def metrics(self) -> str:
        """Hash of the deployment's counters and histogram buckets, which every process adds to
        (drip.store.tallies) and the console's /metrics reads: field "<name>|<label>=<value>,..." -> count."""
        return f"{self.prefix}:metrics"

    def busy_threads(self) -> str:
        """Hash of the busy threads: worker threads running a drain ("host:pid:threads/n" -> 1), which
        includes standing by between leases to take queues in line themselves."""
        return f"{{{self.prefix}:workers}}:busy"

    def wake_channel(self) -> str:
        """Pub/sub channel of wake-ups, heard by the supervisor and the worker processes (their standby
        signals); what each says is drip.core.layout.Wake."""
        return f"{self.prefix}:wake"

    def rate_bucket(self, client: str) -> str:
        """A client's token bucket for DRIP_RATE_LIMIT (one key: every web process shares it)."""
        return f"{self.prefix}:rate:{client}"

    def budget(self, name: str) -> str:
        """Sorted set of a downstream budget's requests (its log), scored by time: a route's rate limit
        ("route:<pattern>[:<key>]") or a GoHighLevel location's ("ghl:<location>"). Hash-tagged with its
        counters, so the one script that changes both stays in one slot."""
        return f"{{{self.prefix}:budget:{name}}}"

    def budget_meta(self, name: str) -> str:
        """Hash of a budget's counters (drip.core.layout.Budget)."""
        return f"{{{self.prefix}:budget:{name}}}:meta"

    def ghl_fields(self, location: str) -> str:
        """Hash of a location's custom field key → field id, looked up once and cached (hash-tagged with
        its lookup marker: the cache is replaced in one transaction)."""
        return f"{{{self.prefix}:ghl:{location}}}:fields"

    def ghl_fields_lookup(self, location: str) -> str:
        """Set while one worker looks up a location's field ids (the others wait for its cache)."""
        return f"{{{self.prefix}:ghl:{location}}}:fields:lookup"

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
