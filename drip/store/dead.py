"""Redis I/O of the dead letters: messages that failed their last attempt.

Each shard keeps its dead letters in a stream, indexed by message id, so they
can be listed, shown, replayed (to the head or the tail of their queue) and
purged; `drip dead ...` is built on this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from drip.core.keys import SHARDS, Keys, shard_of
from drip.core.layout import Dead
from drip.store.scripts import Scripts

#: Messages moved per script call by replay and purge (bounds how long Redis is busy with one call).
CHUNK = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    queue: str
    attempts: int
    error: str
    failed_at_ms: int
    enqueued_ms: int
    run_at_ms: int
    payload: bytes


def _letter(fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        id=fields[_ID].decode(),
        queue=fields[_QUEUE].decode(),
        attempts=int(fields[_ATTEMPTS]),
        error=fields[_ERROR].decode(errors="replace"),
        failed_at_ms=int(fields[_FAILED_AT]),
        enqueued_ms=int(fields[_ENQUEUED]),
        run_at_ms=int(fields[_RUN_AT]),
        payload=fields[_PAYLOAD],
    )


_ID, _QUEUE, _ATTEMPTS, _ERROR, _FAILED_AT, _ENQUEUED, _RUN_AT, _PAYLOAD = (
    name.encode() for name in (Dead.id, Dead.queue, Dead.attempts, Dead.error, Dead.failed_at, Dead.enqueued,
                               Dead.run_at, Dead.payload))


class DeadLetters:
    def __init__(self, scripts: Scripts, keys: Keys) -> None:
        self.scripts = scripts
        self.client = scripts.client
        self.keys = keys

    def list(self, queue: str | None = None) -> list[DeadLetter]:
        """Every dead letter (of `queue`, if given), oldest first within a shard."""
        shards = [shard_of(queue)] if queue is not None else range(SHARDS)
        pipe = self.client.pipeline(transaction=False)
        for shard in shards:
            pipe.xrange(self.keys.dead(shard))
        letters = [_letter(fields) for entries in pipe.execute() for _, fields in entries]
        return [d for d in letters if queue is None or d.queue == queue]

    def get(self, message_id: str) -> DeadLetter | None:
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.hget(self.keys.dead_index(shard), message_id)
        for shard, dead_id in enumerate(pipe.execute()):
            if dead_id:
                entries = self.client.xrange(self.keys.dead(shard), dead_id, dead_id)
                return _letter(entries[0][1]) if entries else None
        return None

    def replay(
        self, letters: Iterable[DeadLetter], *, to_head: bool = True, progress: Callable[[int], None] = lambda n: None
    ) -> int:
        """Put dead letters back into their queues, at the head (in the order given) or the tail."""
        by_queue: dict[str, list[str]] = defaultdict(list)
        for d in letters:
            by_queue[d.queue].append(d.id)
        k, done = self.keys, 0
        for queue, ids in by_queue.items():
            shard = shard_of(queue)
            for start in range(0, len(ids), CHUNK):
                done += self.scripts.run(
                    "replay",
                    [k.dead(shard), k.dead_index(shard), k.state(queue), k.stream(queue), k.replays(queue),
                     k.ready(shard), k.events(shard)],
                    [queue, "head" if to_head else "tail", k.wake_channel(), *ids[start : start + CHUNK]],
                )
                progress(done)
        return done

    def purge(self, letters: Iterable[DeadLetter], *, progress: Callable[[int], None] = lambda n: None) -> int:
        """Delete dead letters for good (their history rows stay 'dead')."""
        by_shard: dict[int, list[str]] = defaultdict(list)
        for d in letters:
            by_shard[shard_of(d.queue)].append(d.id)
        purged = 0
        for shard, ids in by_shard.items():
            for start in range(0, len(ids), CHUNK):
                purged += self.scripts.run(
                    "purge", [self.keys.dead(shard), self.keys.dead_index(shard)], ids[start : start + CHUNK]
                )
                progress(purged)
        return purged
