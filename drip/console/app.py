"""The console's Starlette app: its routes (pages, /api/, /metrics, static files), the gate in front
of them, and what every handler shares (the store, the settings). Apart from the webhook: its own
process and port, so operators' reads never slow the intake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from drip.console import api, pages
from drip.console.auth import Gate, GateMiddleware
from drip.console.metrics import metrics_endpoint, registry_for
from drip.core.settings import Settings
from drip.store.stores import Store


@dataclass(frozen=True)
class Console:
    settings: Settings
    store: Store
    gate: Gate


def create_app(settings: Settings, *, dev: bool = False, store: Store | None = None) -> Starlette:
    """The console; `dev` (drip dev) lets it run open on loopback while DRIP_CONSOLE_TOKENS is unset."""
    gate = Gate.for_console(settings.console_roles, settings.console_host, dev=dev)
    routes = [
        Route("/", pages.overview),
        Route("/queues", pages.queues),
        Route("/queues/{name:path}", pages.queue),
        Route("/dead", pages.dead),
        Route("/messages/{id}", pages.message),
        Route("/search", pages.search),
        Route("/gohighlevel", pages.gohighlevel),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/metrics", metrics_endpoint),
        Route("/api/overview", api.overview),
        Route("/api/queues", api.queues),
        Route("/api/queues/{name:path}/pause", partial(api.act, "pause"), methods=["POST"]),
        Route("/api/queues/{name:path}/resume", partial(api.act, "resume"), methods=["POST"]),
        Route("/api/queues/{name:path}/skip", partial(api.act, "skip"), methods=["POST"]),
        Route("/api/queues/{name:path}", api.queue),
        Route("/api/dead", api.dead),
        Route("/api/dead/replay", partial(api.act, "replay"), methods=["POST"]),
        Route("/api/dead/purge", partial(api.act, "purge"), methods=["POST"]),
        Route("/api/messages/{id}", api.message),
        Route("/api/messages/{id}/cancel", partial(api.act, "cancel"), methods=["POST"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    store = store or Store.from_settings(settings)
    registry, collector = registry_for(store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        collector.start()
        try:
            yield
        finally:
            collector.stop()

    app = Starlette(routes=routes, middleware=[Middleware(GateMiddleware, gate=gate)], lifespan=lifespan)
    app.state.console = Console(settings, store, gate)
    app.state.metrics_registry = registry
    return app
