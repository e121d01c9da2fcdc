"""Store: every Redis store of one connection, for the supervisor, the worker processes and the
CLI (the webhook has its own, drip.store.intake). One script runner, shared by all of them."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from drip.core.keys import Keys
from drip.core.settings import Settings
from drip.store.budgets import Budgets
from drip.store.connection import redis_client, redis_now_ms
from drip.store.dead import DeadLetters
from drip.store.events import Events
from drip.store.leases import Leases
from drip.store.queues import Queues
from drip.store.scripts import Scripts
from drip.store.workers import Workers


@dataclass(frozen=True)
class Store:
    client: redis.Redis
    keys: Keys
    scripts: Scripts
    queues: Queues
    leases: Leases
    workers: Workers
    dead: DeadLetters
    events: Events
    budgets: Budgets

    @classmethod
    def connect(cls, client: redis.Redis | redis.RedisCluster, keys: Keys, *, dedup_ttl_ms: int = 86_400_000,
                horizon_ms: int = 30 * 86_400_000, min_replicas: int = 0, replica_timeout_ms: int = 1000) -> Store:
        scripts = Scripts(client, min_replicas=min_replicas, replica_timeout_ms=replica_timeout_ms)
        return cls(client, keys, scripts,
                   queues=Queues(scripts, keys, dedup_ttl_ms=dedup_ttl_ms, horizon_ms=horizon_ms),
                   leases=Leases(scripts, keys), workers=Workers(scripts, keys), dead=DeadLetters(scripts, keys),
                   events=Events(client, keys), budgets=Budgets(scripts, keys))

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls.connect(redis_client(settings.redis_url), Keys(settings.prefix),
                           dedup_ttl_ms=settings.dedup_ttl_s * 1000, horizon_ms=settings.max_horizon * 1000,
                           min_replicas=settings.redis_min_replicas,
                           replica_timeout_ms=settings.redis_replica_timeout_ms)

    def redis_now_ms(self) -> int:
        """Redis's clock."""
        return redis_now_ms(self.client)
