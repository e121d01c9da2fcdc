"""The webhook's Redis: store messages, take a client's rate-limit token, cancel a scheduled
message, check health. Async, and nothing else: this is the whole of the webhook's I/O."""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from drip.core.keys import Keys
from drip.core.messages import Inbound
from drip.core.settings import Settings
from drip.store.connection import async_redis_client
from drip.store.queues import (
    Cancel,
    Stored,
    beyond_horizon,
    cancel_call,
    cancelled,
    enqueue_call,
    find_calls,
    found,
    stored,
)
from drip.store.scripts import AsyncScripts


class IntakeStore:
    def __init__(self, client: redis.asyncio.Redis, keys: Keys, *, dedup_ttl_ms: int, horizon_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.dedup_ttl_ms = dedup_ttl_ms
        self.horizon_ms = horizon_ms
        self.scripts = AsyncScripts(client)

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeStore:
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

    async def close(self) -> None:
        await self.client.aclose()
