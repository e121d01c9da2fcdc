"""The webhook's Redis: store messages, take a client's rate-limit token, cancel a scheduled
message, check health. Async, and nothing else: this is the whole of the webhook's I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis
import redis.asyncio

from drip.core.keys import Keys, shard_of
from drip.core.messages import Inbound
from drip.core.settings import Settings
from drip.store.async_scripts import AsyncScripts
from drip.store.coalesce import Coalescer
from drip.store.connection import async_redis_client
from drip.store.queues import (
    Cancel,
    Stored,
    cancel_call,
    cancelled,
    enqueue_calls,
    find_calls,
    found,
    stored,
)
from drip.store.tallies import add_counts


class IntakeStore:
    def __init__(self, client: redis.asyncio.Redis | redis.asyncio.RedisCluster, keys: Keys, *, dedup_ttl_ms: int,
                 horizon_ms: int, max_batch: int = 1000, min_replicas: int = 0,
                 replica_timeout_ms: int = 1000) -> None:
        self.client = client
        self.keys = keys
        self.dedup_ttl_ms = dedup_ttl_ms
        self.horizon_ms = horizon_ms
        self.scripts = AsyncScripts(client, min_replicas=min_replicas, replica_timeout_ms=replica_timeout_ms)
        self.cluster = self.scripts.cluster
        self.joined = Coalescer(self._enqueue_now, max_batch)

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeStore:
        return cls(async_redis_client(settings.redis_url), Keys(settings.prefix),
                   dedup_ttl_ms=settings.dedup_ttl_s * 1000, horizon_ms=settings.max_horizon * 1000,
                   max_batch=settings.max_batch,
                   min_replicas=settings.redis_min_replicas, replica_timeout_ms=settings.redis_replica_timeout_ms)

    async def enqueue(self, messages: Sequence[Inbound]) -> list[Stored]:
        """Store one request's messages, all or nothing (per shard on a cluster), in a call it may share
        with the requests that arrive while this process's previous call to the same shard is on its way
        (drip.store.coalesce). A request whose messages span shards goes alone."""
        if not self.cluster:
            return await self.joined.store(0, messages)
        shards = {shard_of(m.queue) for m in messages}
        if len(shards) == 1:
            return await self.joined.store(shards.pop(), messages)
        return await self._enqueue_now(messages)

    async def _enqueue_now(self, messages: Sequence[Inbound]) -> list[Stored]:
        calls = enqueue_calls(self.keys, messages, self.dedup_ttl_ms, self.horizon_ms, per_shard=self.cluster)
        if len(calls) == 1:
            replies = [await self._enqueue_call(calls[0])]
        else:  # one call per shard, to their nodes at once
            replies = await asyncio.gather(*(self._enqueue_call(call) for call in calls), return_exceptions=True)
            for reply in replies:
                if isinstance(reply, BaseException) and not isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
        return stored(messages, calls, replies, self.horizon_ms)

    async def _enqueue_call(self, call: tuple[list[int], list, list]) -> object:
        try:
            return await self.scripts.run("enqueue", call[1], call[2])
        except redis.exceptions.ResponseError as exc:  # a refusal of this call alone (HORIZON)
            return exc

    async def take_token(self, client: str, per_second: float, burst: int) -> int:
        """Take a token from `client`'s bucket: 0, or the ms until one is there."""
        return int(await self.scripts.run("ratelimit", [self.keys.rate_bucket(client)], [per_second / 1000, burst]))

    async def cancel(self, message_id: str) -> tuple[Cancel, str | None]:
        """As drip.store.queues.Queues.cancel, for the webhook's DELETE /messages/{id}."""
        pipe = self.client.pipeline(transaction=False)
        for command, key, mid in find_calls(self.keys, message_id):
            pipe.execute_command(command, key, mid)
        queue, outcome = found(await pipe.execute())
        if queue is None:
            return outcome, None
        return cancelled(queue, await self.scripts.run("cancel", *cancel_call(self.keys, queue, message_id)))

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def add_counts(self, counts) -> None:
        """Add a drip.store.tallies count to Redis (the webhook's flush): one round trip."""
        pipe = self.client.pipeline(transaction=False)
        add_counts(pipe, self.keys, counts)
        await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()
