"""Redis I/O of downstream budgets: how fast drip may call the system after it. One
mechanism for every user: a route's `rate_limit` (shared by the queues it matches, or split
by `rate_key`) and GoHighLevel's per-location budget, each a sliding log in Redis shared
by every worker process and host (budget.lua)."""

from __future__ import annotations

from dataclasses import dataclass

from drip.core.keys import Keys
from drip.core.layout import Budget as BudgetField
from drip.core.timing import parse_rate
from drip.store.connection import read_with_time
from drip.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `limit` requests in any `window_ms`, and `daily` a day (0: no daily cap)."""

    limit: int
    window_ms: int
    daily: int = 0

    @classmethod
    def parse(cls, text: str) -> Budget:
        """'80/s', '6000/m', '100/s:300' (a burst of 300): at most `burst` in any window of
        burst / rate, so a burst is allowed and the rate holds over every window that long."""
        per_second, burst = parse_rate(text)
        return cls(burst, max(1, round(burst / per_second * 1000)))


class Budgets:
    def __init__(self, scripts: Scripts, keys: Keys) -> None:
        self.scripts = scripts
        self.keys = keys

    def _run(self, name: str, budget: Budget, op: str, *extra: object) -> tuple[int, int]:
        wait, entry = self.scripts.run("budget", [self.keys.budget(name), self.keys.budget_meta(name)],
                                       [op, budget.limit, budget.window_ms, budget.daily, *extra])
        return int(wait), int(entry)

    def take(self, name: str, budget: Budget) -> tuple[int, int]:
        """Log a request: (0, its entry), or (the ms to wait before one may go, 0)."""
        return self._run(name, budget, "take")

    def settle(self, name: str, budget: Budget, entry: int) -> None:
        """Move a logged request to now, when its answer came: it then counts a whole window from there."""
        self._run(name, budget, "settle", entry)

    def observe(self, name: str, budget: Budget, remaining: int | None, blocked_ms: int) -> None:
        """Tighten the budget to what the downstream reported; block it for a 429's Retry-After."""
        self._run(name, budget, "observe", "" if remaining is None else remaining, blocked_ms)

    def used(self, name: str, budget: Budget) -> tuple[int, int]:
        """(requests in the current window, requests today) of a budget, on Redis's clock. Read-only."""
        now, (log, (day, day_count)) = read_with_time(self.scripts.client, lambda pipe: [
            pipe.zrangebyscore(self.keys.budget(name), "-inf", "+inf", withscores=True),
            pipe.hmget(self.keys.budget_meta(name), [BudgetField.day, BudgetField.day_count])])
        today = now // 86_400_000
        return (sum(1 for _, at in log if at > now - budget.window_ms),
                int(day_count or 0) if day is not None and int(day) == today else 0)
