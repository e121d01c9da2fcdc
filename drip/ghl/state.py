"""Redis I/O of the GoHighLevel release handler: per-location request budgets, cached field ids
and timezones, each queue's last release (to keep its spacing), and the business-hours clock.
Its keys are drip.core.keys's `ghl_*`; the budget is one of drip.store.budgets's."""

from __future__ import annotations

import redis

from drip.core.keys import SHARDS, Keys
from drip.store.budgets import Budget, Budgets
from drip.store.connection import redis_now_ms
from drip.store.scripts import Scripts

#: GoHighLevel's limits per location: 100 requests per 10 s, 200,000 per day (plus a margin
#: for clocks and for the time between GHL seeing a request and drip settling it).
BUDGET = Budget(limit=100, window_ms=10_000 + 250, daily=200_000)
_CACHE_S = 3600


def _budget(location: str) -> str:
    return f"ghl:{location}"


class GhlState:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.scripts = Scripts(client)
        self.budgets = Budgets(self.scripts, keys)

    def take(self, location: str) -> tuple[int, int]:
        """Log a request in the location's budget: (0, its entry), or (the ms to wait before one may go, 0)."""
        return self.budgets.take(_budget(location), BUDGET)

    def used(self, location: str) -> tuple[int, int]:
        """The location's budget spent: (requests in the current 10 s, requests today)."""
        return self.budgets.used(_budget(location), BUDGET)

    def settle(self, location: str, entry: int) -> None:
        """Move a logged request to now, when its answer came: it then counts a full window from there."""
        self.budgets.settle(_budget(location), BUDGET, entry)

    def observe(self, location: str, remaining: int | None, blocked_ms: int) -> None:
        """Tighten the budget to what GoHighLevel reported; block it for a 429's Retry-After."""
        self.budgets.observe(_budget(location), BUDGET, remaining, blocked_ms)

    def field_id(self, location: str, key: str) -> tuple[bool, str | None]:
        """(whether the location's field ids are cached, the id of `key` among them), read together so a
        cache written between two reads never looks like a field the location lacks."""
        pipe = self.client.pipeline(transaction=True)
        pipe.exists(self.keys.ghl_fields(location))
        pipe.hget(self.keys.ghl_fields(location), key)
        cached, value = pipe.execute()
        return bool(cached), value.decode() if value else None

    def cache_fields(self, location: str, ids: dict[str, str]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.ghl_fields(location))
        if ids:
            pipe.hset(self.keys.ghl_fields(location), mapping=ids)
        pipe.expire(self.keys.ghl_fields(location), _CACHE_S)
        pipe.delete(self.keys.ghl_fields_lookup(location))
        pipe.execute()

    def lock_fields(self, location: str, ttl_ms: int = 10_000) -> bool:
        """Claim the one lookup of a location's field ids (others wait for its cache); True if ours."""
        return bool(self.client.set(self.keys.ghl_fields_lookup(location), 1, nx=True, px=ttl_ms))

    def unlock_fields(self, location: str) -> None:
        self.client.delete(self.keys.ghl_fields_lookup(location))

    def timezone(self, location: str) -> str | None:
        value = self.client.get(self.keys.ghl_timezone(location))
        return value.decode() if value else None

    def cache_timezone(self, location: str, zone: str) -> None:
        self.client.set(self.keys.ghl_timezone(location), zone, ex=86_400)

    def last_release(self, queue: str) -> tuple[int, int] | None:
        """(released_ms, planned_ms) of the queue's last release, if any."""
        value = self.client.hget(self.keys.ghl_pace(), queue)
        if not value:
            return None
        released, planned = value.decode().split(":")
        return int(released), int(planned)

    def record_release(self, queue: str, released_ms: int, planned_ms: int) -> None:
        self.client.hset(self.keys.ghl_pace(), queue, f"{released_ms}:{planned_ms}")

    def now_ms(self) -> int:
        """Redis's clock: the one a release's spacing is kept on, whichever host releases it."""
        return redis_now_ms(self.client)

    def clock_ms(self) -> int:
        """The business-hours clock: Redis's clock plus the offset set by `drip clock` (normally none)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        pipe.get(self.keys.clock_offset())
        (seconds, micros), offset = pipe.execute()
        return seconds * 1000 + micros // 1000 + (int(offset) if offset else 0)

    def set_clock(self, offset_ms: int) -> int:
        """Move the business-hours clock (0 puts it back) and let every waiting queue look again."""
        if offset_ms:
            self.client.set(self.keys.clock_offset(), offset_ms)
        else:
            self.client.delete(self.keys.clock_offset())
        now = redis_now_ms(self.client)
        return sum(self.scripts.run_many("wake_deferred", [([self.keys.ready(shard)], [now, self.keys.wake_channel()])
                                                  for shard in range(SHARDS)]))
