"""The reads behind `drip status`: every queue in line, leased, scheduled or paused, with its
counts and lease, plus the workers, the leader and the backlogs. Read-only."""

from __future__ import annotations

import redis

from drip.core.keys import SHARDS, Keys
from drip.core.layout import State
from drip.store.connection import read_with_time
from drip.store.workers import live_workers, slots_of

_ATTEMPT, _HOLDER, _HEAD, _WAITING = (State.attempt.encode(), State.holder.encode(), State.head.encode(),
                                      State.waiting.encode())


def overview(client: redis.Redis, keys: Keys) -> dict:
    """What `drip status` shows: every queue in line, leased or with scheduled messages; workers; backlogs."""
    def reads(pipe: redis.client.Pipeline) -> None:
        for shard in range(SHARDS):
            pipe.zrange(keys.ready(shard), 0, -1, withscores=True)
            pipe.zrange(keys.leases(shard), 0, -1, withscores=True)
            pipe.zrange(keys.due(shard), 0, -1)
            pipe.xlen(keys.events(shard))
            pipe.xlen(keys.dead(shard))
            pipe.smembers(keys.paused(shard))
        pipe.zrange(keys.workers(), 0, -1, withscores=True)
        pipe.get(keys.leader())

    # Redis's clock, the one leases and places in line are on.
    now, (*per_shard, members, leader) = read_with_time(client, reads)
    pipe = client.pipeline(transaction=False)
    workers, _stopped = live_workers(members, now)
    waiting = {q.decode(): int(score) for rows in per_shard[0::6] for q, score in rows}
    leased = {q.decode(): int(score) for rows in per_shard[1::6] for q, score in rows}
    scheduled_queues = {q.decode() for rows in per_shard[2::6] for q in rows}
    paused = {q.decode() for members in per_shard[5::6] for q in members}
    queues = sorted(waiting.keys() | leased.keys() | scheduled_queues | paused)
    for queue in queues:
        pipe.xlen(keys.stream(queue))
        pipe.llen(keys.replays(queue))
        pipe.hgetall(keys.state(queue))
        pipe.zcard(keys.delayed(queue))
        pipe.zrange(keys.delayed(queue), 0, 0, withscores=True)
    replies = pipe.execute()
    rows = []
    for i, queue in enumerate(queues):
        length, replays, state, scheduled, first = replies[5 * i : 5 * i + 5]
        in_flight = 1 if queue in leased and _HEAD in state else 0
        rows.append({
            "queue": queue,
            "ready": length + replays - in_flight,
            "in_flight": in_flight,
            "scheduled": scheduled,
            "paused": queue in paused,
            "next_run_at_ms": int(first[0][1]) if first else None,
            "attempt": int(state[_ATTEMPT]) if _ATTEMPT in state else None,
            "lease_holder": state.get(_HOLDER, b"").decode() or None,
            "lease_expires_in_ms": leased[queue] - now if queue in leased else None,
            "waiting_since_ms": now - waiting[queue] if queue in waiting else None,
            # A place in line still ahead: the queue waits out a retry's backoff or a deferral, for this.
            "waits_for": (state.get(_WAITING, b"").decode() or None)
            if queue in waiting and waiting[queue] > now else None,
        })
    return {
        "leader": leader.decode() if leader else None,
        "workers": [w.decode() for w in workers],
        "slots": slots_of(workers),
        "leases": len(leased),
        "history_backlog": sum(per_shard[3::6]),
        "dead_letters": sum(per_shard[4::6]),
        "queues": rows,
    }
