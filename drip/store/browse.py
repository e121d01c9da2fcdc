"""The console's reads of Redis: deployment totals (a few commands per shard, whatever the number of
queues) and pages of queues with SCAN-style cursors over the per-shard indexes (never KEYS, never a
full scan per page view). Read-only."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import redis

from drip.core.errors import InvalidInput
from drip.core.keys import SHARDS, Keys, shard_of
from drip.core.layout import Entry, State
from drip.store.connection import read_with_time
from drip.store.workers import live_workers, slots_of

_TOKEN, _HOLDER, _HEAD, _ATTEMPT, _WAITING = (f.encode() for f in (State.token, State.holder, State.head,
                                                                     State.attempt, State.waiting))
_ENQUEUED = Entry.enqueued.encode()
#: Waiting queues (place in line ahead) whose reason is read to tell retrying from deferred, per shard.
WAITING_SAMPLE = 200
#: The per-shard indexes a listing walks, in order; a queue is listed under the first that holds it.
INDEXES = ("ready", "leases", "due", "paused")
SORTS = ("index", "waiting", "run_at")
#: Round trips one page may spend looking for queues that match its glob (then it ends early, with a cursor).
ROUNDS = 64


def totals(client: redis.Redis, keys: Keys) -> dict:
    """Queues in line, held, retrying, deferred, paused; scheduled messages, dead letters; workers, busy
    threads, the leader, the recorder's backlog, Redis's memory."""
    def reads(pipe) -> None:
        for shard in range(SHARDS):
            pipe.zcard(keys.ready(shard))
            pipe.zcard(keys.leases(shard))
            pipe.scard(keys.paused(shard))
            pipe.hlen(keys.scheduled_ids(shard))
            pipe.xlen(keys.dead(shard))
            pipe.xlen(keys.events(shard))
        pipe.zrange(keys.workers(), 0, -1, withscores=True)
        pipe.hlen(keys.busy_threads())
        pipe.get(keys.leader())
        pipe.get(keys.leader("recorder"))

    now, (*per_shard, members, busy, leader, recorder) = read_with_time(client, reads)
    # Queues whose place in line is ahead wait out a retry or a deferral: their reasons tell which.
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.zrangebyscore(keys.ready(shard), f"({now}", "+inf", start=0, num=WAITING_SAMPLE)
        pipe.zcount(keys.ready(shard), f"({now}", "+inf")
    replies = pipe.execute()
    waiting = [q.decode() for rows in replies[0::2] for q in rows]
    n_waiting = sum(replies[1::2])
    pipe = client.pipeline(transaction=False)
    for queue in waiting:
        pipe.hget(keys.state(queue), State.waiting)
    retrying = sum(1 for why in pipe.execute() if why and why.startswith(b"retry"))
    workers, _ = live_workers(members, now)
    try:
        memory = client.info("memory").get("used_memory")
    except redis.RedisError:  # a cluster answers per node; the memory then stays unknown
        memory = None
    in_line = sum(per_shard[0::6])
    return {
        "now_ms": now,
        "in_line": in_line - n_waiting,
        "held": sum(per_shard[1::6]),
        "retrying": retrying,
        "deferred": n_waiting - retrying,
        "paused": sum(per_shard[2::6]),
        "scheduled": sum(per_shard[3::6]),
        "dead_letters": sum(per_shard[4::6]),
        "recorder_backlog": sum(per_shard[5::6]),
        "workers": len(workers),
        "slots": slots_of(workers),
        "busy_threads": busy,
        "leader": leader.decode() if leader else None,
        "recorder_leader": recorder.decode() if recorder else None,
        "redis_memory_bytes": memory,
    }


@dataclass(frozen=True, slots=True)
class Page:
    queues: list[dict]
    cursor: str | None  # the next page's, None on the last


def page(client: redis.Redis, keys: Keys, *, match: str | None = None, sort: str = "index",
         cursor: str | None = None, count: int = 50) -> Page:
    """One page of queues with messages. `index`: shard by shard through the indexes (ZSCAN / SSCAN with
    MATCH); `waiting`: oldest place in line first; `run_at`: next scheduled run_at first. The cursor is
    opaque to callers; like SCAN's, a queue that changes while paging may be listed twice or not at all."""
    try:
        if sort == "index":
            names, cursor = _scan(client, keys, match, cursor, count)
        else:
            names, cursor = _by_score(client, keys, keys.ready if sort == "waiting" else keys.due, match, cursor,
                                      count)
    except (ValueError, IndexError):
        raise InvalidInput("this cursor is not one a page of queues gave: start again from the first page",
                           "cursor") from None
    return Page(rows(client, keys, names), cursor)


def _scan(client, keys: Keys, match: str | None, cursor: str | None, count: int) -> tuple[list[str], str | None]:
    shard, index, position = (int(p) for p in cursor.split(".")) if cursor else (0, 0, 0)
    found: list[str] = []
    rounds = 0
    while shard < SHARDS and len(found) < count and rounds < ROUNDS:
        rounds += 1
        name = INDEXES[index]
        key = keys.paused(shard) if name == "paused" else getattr(keys, name)(shard)
        scan = client.sscan if name == "paused" else client.zscan
        position, members = scan(key, position, match=match, count=count)
        queues = [m.decode() for m in (members if name == "paused" else (m for m, _ in members))]
        found += _first_listed(client, keys, shard, index, queues)
        if position == 0:
            index += 1
            if index == len(INDEXES):
                shard, index = shard + 1, 0
    return found, f"{shard}.{index}.{position}" if shard < SHARDS else None


def _first_listed(client, keys: Keys, shard: int, index: int, queues: list[str]) -> list[str]:
    """The queues not held by an index walked before `index` (each queue is listed once)."""
    if index == 0 or not queues:
        return queues
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for earlier in INDEXES[:index]:
            if earlier == "paused":
                pipe.sismember(keys.paused(shard), queue)
            else:
                pipe.zscore(getattr(keys, earlier)(shard), queue)
    replies = pipe.execute()
    return [q for i, q in enumerate(queues) if not any(replies[i * index:(i + 1) * index])]


def _by_score(client, keys: Keys, index_key, match: str | None, cursor: str | None,
              count: int) -> tuple[list[str], str | None]:
    """Merge the shards' sorted indexes: the cursor is each shard's offset into its index."""
    offsets = [int(o) for o in cursor.split(".")] if cursor else [0] * SHARDS
    found: list[str] = []
    for _ in range(ROUNDS):
        if len(found) >= count:
            break
        pipe = client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.zrange(index_key(shard), offsets[shard], offsets[shard] + count - 1, withscores=True)
        candidates = sorted((score, shard, m.decode()) for shard, rows in enumerate(pipe.execute())
                            for m, score in rows)
        if not candidates:
            return found, None
        for _score, shard, queue in candidates[:count]:
            offsets[shard] += 1
            if match is None or fnmatch.fnmatchcase(queue, match):
                found.append(queue)
    return found, ".".join(map(str, offsets))


def rows(client: redis.Redis, keys: Keys, queues: list[str]) -> list[dict]:
    """Each queue's state (in line / held by whom / retrying until / deferred until and why / paused /
    scheduled), ready and scheduled counts, head age and next run_at. One round trip."""
    def reads(pipe) -> None:
        for queue in queues:
            shard = shard_of(queue)
            pipe.xlen(keys.stream(queue))
            pipe.llen(keys.replays(queue))
            pipe.hgetall(keys.state(queue))
            pipe.zcard(keys.delayed(queue))
            pipe.zrange(keys.delayed(queue), 0, 0, withscores=True)
            pipe.xrange(keys.stream(queue), "-", "+", count=1)
            pipe.zscore(keys.ready(shard), queue)
            pipe.sismember(keys.paused(shard), queue)
    now, replies = read_with_time(client, reads)
    out = []
    for i, queue in enumerate(queues):
        length, replays, state, scheduled, first, oldest, place, paused = replies[8 * i:8 * i + 8]
        held = _TOKEN in state
        why = state.get(_WAITING, b"").decode() or None
        if paused:
            # fail.lua's on_dead = "pause" leaves why the queue stopped; an operator's pause leaves none.
            kind, until = ("blocked by a dead head" if why and why.startswith("dead head ") else "paused"), None
        elif held:
            kind, until = "held", None
        elif place is not None and place > now:
            kind, until = ("retrying" if why and why.startswith("retry") else "deferred"), int(place)
        elif place is not None:
            kind, until = "in line", None
        else:
            kind, until = "scheduled", None
        in_flight = 1 if held and _HEAD in state else 0
        out.append({
            "queue": queue, "state": kind, "until_ms": until,
            "why": why if until or kind == "blocked by a dead head" else None,
            "holder": state.get(_HOLDER, b"").decode() or None if held else None,
            "ready": length + replays - in_flight, "in_flight": in_flight, "scheduled": scheduled,
            "attempt": int(state[_ATTEMPT]) if _ATTEMPT in state else None,
            "head_age_ms": now - int(oldest[0][1][_ENQUEUED]) if oldest and _ENQUEUED in oldest[0][1] else None,
            "next_run_at_ms": int(first[0][1]) if first else None,
        })
    return out


def queue_detail(client: redis.Redis, keys: Keys, queue: str, limit: int = 100) -> dict:
    """One queue for its page: its row, the head message (id, payload, attempt, the lease and its expiry),
    the next ready messages and the scheduled ones in order with run_at (up to `limit` each)."""
    shard = shard_of(queue)

    def reads(pipe) -> None:
        pipe.lrange(keys.replays(queue), 0, limit - 1)
        pipe.xrange(keys.stream(queue), "-", "+", count=limit)
        pipe.zrange(keys.delayed(queue), 0, limit - 1, withscores=True)
        pipe.zscore(keys.leases(shard), queue)
    now, (replays, entries, delayed, lease_expiry) = read_with_time(client, reads)
    ready = []
    for text in replays:
        mid, enqueued, run_at, payload = text.split(b"\n", 3)
        ready.append({"id": mid.decode(), "enqueued_ms": int(enqueued), "run_at_ms": int(run_at), "payload": payload,
                      "replayed": True})
    for _, fields in entries:
        ready.append({"id": fields[Entry.id.encode()].decode(), "enqueued_ms": int(fields[_ENQUEUED]),
                      "run_at_ms": int(fields[Entry.run_at.encode()]), "payload": fields[Entry.payload.encode()],
                      "replayed": False})
    bodies = client.hmget(keys.bodies(queue), [m for m, _ in delayed]) if delayed else []
    scheduled = [{"id": member[16:].decode(), "run_at_ms": int(score),
                  "payload": body.split(b"\n", 1)[1] if body else b"null"}
                 for (member, score), body in zip(delayed, bodies, strict=True)]
    (row,) = rows(client, keys, [queue])
    return {"row": row, "head": ready[0] if ready else None, "ready": ready, "scheduled": scheduled,
            "lease_expires_in_ms": int(lease_expiry) - now if lease_expiry is not None else None, "now_ms": now}
