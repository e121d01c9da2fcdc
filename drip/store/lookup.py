"""Where one message is in Redis, for `drip show` and the console's message page: scheduled (by id,
any shard), in its queue's line (position N), in hand (the head, a lease out), or a dead letter.
Read-only; a ready message has no index by id, so its queue (from the history) is searched."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from drip.core.keys import SHARDS, Keys
from drip.core.layout import Entry, State

#: How far into a queue's line a message is looked for.
SEARCH_DEPTH = 10_000

_ID, _HEAD, _TOKEN, _HOLDER, _ATTEMPT = (Entry.id.encode(), State.head.encode(), State.token.encode(),
                                         State.holder.encode(), State.attempt.encode())


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message is: `scheduled`, `ready` (at `position`, 1 = the head), or `in hand`."""

    where: str
    queue: str
    position: int | None = None
    run_at_ms: int | None = None
    holder: str | None = None
    attempt: int | None = None


def scheduled(client: redis.Redis, keys: Keys, message_id: str) -> Place | None:
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.hget(keys.scheduled_ids(shard), message_id)
    where = next((w for w in pipe.execute() if w), None)
    if where is None:
        return None
    queue, member = where.decode().split("\n", 1)
    score = client.zscore(keys.delayed(queue), member)
    return Place("scheduled", queue, run_at_ms=int(score) if score is not None else None)


def in_line(client: redis.Redis, keys: Keys, queue: str, message_id: str) -> Place | None:
    """The message's place among its queue's replay list and stream (the first SEARCH_DEPTH)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.state(queue))
    pipe.lrange(keys.replays(queue), 0, SEARCH_DEPTH - 1)
    pipe.xrange(keys.stream(queue), "-", "+", count=SEARCH_DEPTH)
    state, replays, entries = pipe.execute()
    ids = [r.split(b"\n", 1)[0] for r in replays] + [fields.get(_ID, b"") for _, fields in entries]
    wanted = message_id.encode()
    if wanted not in ids:
        return None
    position = ids.index(wanted) + 1
    attempt = int(state[_ATTEMPT]) if position == 1 and _ATTEMPT in state else None
    if position == 1 and _TOKEN in state and _HEAD in state:
        return Place("in hand", queue, 1, holder=state.get(_HOLDER, b"").decode() or None, attempt=attempt)
    return Place("ready", queue, position, attempt=attempt)
