"""Redis I/O of the worker pool as the supervisor sees it: live processes (heartbeats), busy
threads, wake-ups, and the survey a supervisor round decides on.

Threads are counted exactly: slots are the threads of live worker processes, a thread
running a drain (standing by included) marks itself busy, and a supervisor grant stays in
transit until its drain's first step; the rest are idle in the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from drip.core.keys import SHARDS, Keys
from drip.core.layout import Wake
from drip.store.connection import REDIS_DOWN, read_with_time
from drip.store.scripts import Scripts


def close_quietly(pubsub: redis.client.PubSub | None) -> None:
    """Close a wake-up subscription that may sit on a broken connection."""
    if pubsub is not None:
        try:
            pubsub.close()
        except REDIS_DOWN:
            pass


@dataclass(frozen=True, slots=True)
class Survey:
    """What the supervisor decides a round on, read in one round trip."""

    now_ms: int  # Redis's clock
    slots: int  # threads of live worker processes
    leases: int  # live leases
    busy: int  # busy threads: threads of live worker processes running a drain (drip.work.standby)
    in_transit: int  # grants sent through the broker whose drain has not started
    heads: list[tuple[int, int, str]]  # queues in line as (since_ms, shard, queue), oldest first
    earliest_due_ms: int | None  # earliest run_at of any scheduled message


def live_workers(members: list[tuple[bytes, float]], now_ms: int) -> tuple[list[bytes], list[bytes]]:
    """The registry's members (with their heartbeat expiry) as (alive, stopped beating) at `now_ms`."""
    return [m for m, expiry in members if expiry > now_ms], [m for m, expiry in members if expiry <= now_ms]


def slots_of(workers: list[bytes]) -> int:
    """Threads of worker processes, from their registry members ("host:pid:threads")."""
    return sum(int(w.rsplit(b":", 1)[1]) for w in workers)


class Workers:
    def __init__(self, scripts: Scripts, keys: Keys) -> None:
        self.scripts = scripts
        self.client = scripts.client
        self.keys = keys

    def heartbeat(self, member: str, ttl_ms: int, busy: list[str] | None = None) -> bool:
        """Announce a live worker process, alive for `ttl_ms` on Redis's clock; True when it just joined
        (the supervisor is then woken). With `busy`, the process's busy threads become exactly those:
        how a process corrects marks that a failed write left wrong."""
        correct = [] if busy is None else busy
        return self.scripts.run("heartbeat", [self.keys.workers(), self.keys.busy_threads()], [
            member, ttl_ms, self.keys.wake_channel(), "0" if busy is None else "1", *correct]) == 1

    def leave(self, member: str) -> None:
        """A worker process stops: out of the registry, its threads no longer busy."""
        busy = [f for f in self.client.hkeys(self.keys.busy_threads()) if f.decode().startswith(member + "/")]
        pipe = self.client.pipeline(transaction=False)  # each removal stands alone
        pipe.zrem(self.keys.workers(), member)
        if busy:
            pipe.hdel(self.keys.busy_threads(), *busy)
        pipe.execute()

    def busy(self, thread: str) -> None:
        """The thread ("member/n") runs a drain now: the supervisor counts it busy."""
        self.client.hset(self.keys.busy_threads(), thread, 1)

    def idle(self, thread: str) -> None:
        """The thread goes back to the broker: wake the supervisor to grant to it again."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(self.keys.busy_threads(), thread)
        pipe.publish(self.keys.wake_channel(), Wake.freed)
        pipe.execute()

    def nudge(self) -> None:
        """Tell the worker processes' standby signals that queues wait in line."""
        self.client.publish(self.keys.wake_channel(), Wake.line)

    def subscribe_wake(self) -> redis.client.PubSub:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.keys.wake_channel())
        return pubsub

    def survey(self, head_limit: int) -> Survey:
        """Slots, leases, up to `head_limit` queues in line per shard, and the earliest due time: one round trip."""
        k = self.keys

        def reads(pipe: redis.client.Pipeline) -> None:
            pipe.zrange(k.workers(), 0, -1, withscores=True)
            pipe.hgetall(k.busy_threads())
            for shard in range(SHARDS):
                pipe.zcard(k.leases(shard))
                pipe.zrange(k.ready(shard), 0, head_limit - 1, withscores=True)
                pipe.zrange(k.due(shard), 0, 0, withscores=True)
                pipe.scard(k.in_transit(shard))

        now, (members, busy, *per_shard) = read_with_time(self.client, reads)
        workers, stopped = live_workers(members, now)
        live = {w.decode() for w in workers}
        gone = [thread for thread in busy if thread.decode().rsplit("/", 1)[0] not in live]
        if stopped:  # processes that stopped beating: out of the registry (judged on Redis's clock)
            self.client.zrem(k.workers(), *stopped)
        if gone:  # threads of processes that died without leaving
            self.client.hdel(k.busy_threads(), *gone)
        heads = sorted(
            (int(score), shard, queue.decode())
            for shard, rows in enumerate(per_shard[1::4])
            for queue, score in rows
        )
        earliest = [int(rows[0][1]) for rows in per_shard[2::4] if rows]
        return Survey(
            now_ms=now,
            slots=slots_of(workers),
            leases=sum(per_shard[0::4]),
            busy=len(busy) - len(gone),
            in_transit=sum(per_shard[3::4]),
            heads=heads,
            earliest_due_ms=min(earliest, default=None),
        )
