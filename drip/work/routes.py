"""Routes: which handler runs a queue's messages, and how its failures are treated.

DRIP_ROUTES names a TOML file of [[route]] tables, tried in order; the first
whose `queue` pattern (a glob, e.g. "wa:*") matches a queue applies to it.
The router names the built-in handlers (`log` from drip.handlers, `ghl` from
drip.ghl), which is why it sits above both.
Options a route leaves out, and queues no route matches, take the DRIP_*
settings. Example:

    [[route]]
    queue = "location:*"
    handler = "ghl"                   # built in: ghl, log; else module:function (or forward_url = "...")
    release_action = "tag:released"   # for the ghl handler
    max_attempts = 8
    on_dead = "pause"
    timeout_s = 30                    # the handler's time limit (DRIP_HANDLER_TIMEOUT_S)
    rate_limit = "80/s"               # how fast the handler may be called, shared by every worker
    rate_key = 2                      # one budget per 2nd ':'-field of the queue name
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from drip.core.errors import ConfigError
from drip.core.messages import Handler
from drip.core.settings import Settings
from drip.ghl.release import GhlRelease
from drip.handlers.forward import Forward
from drip.handlers.imported import import_handler
from drip.handlers.logged import log_message
from drip.store.budgets import Budget

_OPTIONS = {"queue", "handler", "forward_url", "forward_timeout_s", "max_attempts", "backoff_base_ms",
            "backoff_max_ms", "on_dead", "release_action", "timeout_s", "rate_limit", "rate_key"}
#: A handler's time limit when neither its route nor DRIP_HANDLER_TIMEOUT_S says otherwise.
DEFAULT_TIMEOUT_S = 300.0
#: Handler names built into drip (DRIP_HANDLER or a route's `handler`), beside module:function.
BUILT_IN = ("ghl", "log")
ON_DEAD = ("continue", "pause")


@dataclass(frozen=True)
class Route:
    pattern: str
    handler: Handler
    max_attempts: int
    backoff_base_ms: int
    backoff_max_ms: int
    on_dead: str = "continue"
    #: The handler's time limit: at it, the attempt has failed (drip.work.timelimits).
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: How fast the handler may be called (its downstream's budget), shared by the route's queues...
    rate: Budget | None = None
    #: ...or one budget per value of this (1-based) `:`-separated field of the queue name.
    rate_key: int | None = None

    def budget_name(self, queue: str) -> str:
        """The budget a queue of this route spends: the route's, or its share by rate_key."""
        if self.rate_key is None:
            return f"route:{self.pattern}"
        fields = queue.split(":")
        return f"route:{self.pattern}:{fields[self.rate_key - 1] if len(fields) >= self.rate_key else ''}"


def _handler(settings: Settings, handler: str | None, forward_url: str | None, timeout_s: float,
             release_action: str | None = None) -> Handler:
    if handler == "ghl":
        return GhlRelease(settings, release_action)
    if handler == "log":
        return log_message
    if handler:
        return import_handler(handler)
    if forward_url:
        return Forward(forward_url, timeout_s)
    return log_message


def _route(table: dict, settings: Settings, where: str) -> Route:
    unknown = set(table) - _OPTIONS
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_OPTIONS))}")
    if not isinstance(table.get("queue"), str):
        raise ConfigError(f"{where}: `queue` (a glob such as \"wa:*\") is required")
    on_dead = table.get("on_dead", "continue")
    if on_dead not in ON_DEAD:
        raise ConfigError(f"{where}: on_dead must be one of {', '.join(ON_DEAD)}")
    numbers = {}
    for name in ("max_attempts", "backoff_base_ms", "backoff_max_ms"):
        value = table.get(name, getattr(settings, name))
        if not isinstance(value, int) or value < (1 if name == "max_attempts" else 0):
            raise ConfigError(f"{where}: {name} must be a whole number{' >= 1' if name == 'max_attempts' else ' >= 0'}")
        numbers[name] = value
    has_own_handler = "handler" in table or "forward_url" in table
    handler = _handler(
        settings,
        table.get("handler") if has_own_handler else settings.handler,
        table.get("forward_url") if has_own_handler else settings.forward_url,
        float(table.get("forward_timeout_s", settings.forward_timeout_s)),
        table.get("release_action"),
    )
    timeout_s = table.get("timeout_s", settings.handler_timeout_s)
    if not isinstance(timeout_s, int | float) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise ConfigError(f"{where}: timeout_s must be a number of seconds above 0")
    rate = None
    if "rate_limit" in table:
        try:
            rate = Budget.parse(str(table["rate_limit"]))
        except ValueError as exc:
            raise ConfigError(f"{where}: rate_limit: {exc}") from None
    rate_key = table.get("rate_key")
    if rate_key is not None and (not isinstance(rate_key, int) or isinstance(rate_key, bool) or rate_key < 1
                                 or rate is None):
        raise ConfigError(f"{where}: rate_key must be a field number >= 1 (of the queue name split at ':'), "
                          "beside a rate_limit")
    return Route(table["queue"], handler, on_dead=on_dead, timeout_s=float(timeout_s), rate=rate,
                 rate_key=rate_key, **numbers)


class Router:
    """Finds the route of a queue (remembering the answer: queues come back often)."""

    def __init__(self, routes: list[Route], default: Route) -> None:
        self.routes = routes
        self.default = default
        self._cache: dict[str, Route] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        default = Route("*", _handler(settings, settings.handler, settings.forward_url, settings.forward_timeout_s),
                        settings.max_attempts, settings.backoff_base_ms, settings.backoff_max_ms,
                        timeout_s=settings.handler_timeout_s)
        routes = []
        if settings.routes:
            path = Path(settings.routes)
            try:
                tables = tomllib.loads(path.read_text()).get("route", [])
            except OSError as exc:
                raise ConfigError(f"DRIP_ROUTES: cannot read {path}: {exc.strerror}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"DRIP_ROUTES: {path} is not valid TOML: {exc}") from None
            if not isinstance(tables, list):
                raise ConfigError(f"DRIP_ROUTES: {path} must hold [[route]] tables")
            routes = [_route(t, settings, f"DRIP_ROUTES {path}, route {i + 1}") for i, t in enumerate(tables)]
        return cls(routes, default)

    def route(self, queue: str) -> Route:
        found = self._cache.get(queue)
        if found is None:
            found = next((r for r in self.routes if fnmatch.fnmatchcase(queue, r.pattern)), self.default)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[queue] = found
        return found
