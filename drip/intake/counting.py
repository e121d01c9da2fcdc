"""The webhook's counts for /metrics: requests by endpoint and status code, messages accepted by
source. Counted in memory on the hot path (a dict add) and added to Redis every DRIP_METRICS_FLUSH_MS
by one task, in one round trip (drip.store.tallies)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drip.core import logs
from drip.store.connection import REDIS_DOWN
from drip.store.intake import IntakeStore
from drip.store.tallies import Tally

log = logs.get("drip.web")

#: The webhook's endpoints, the only values of the `endpoint` label (anything else is "other").
ENDPOINTS = ("/enqueue", "/api/enqueue-contact", "/webhook", "/hooks/whatsapp", "/openapi.json", "/healthz",
             "/readyz")


def endpoint_of(path: str) -> str:
    if path in ENDPOINTS:
        return path
    return "/messages/{id}" if path.startswith("/messages/") else "other"


class CountRequests:
    """ASGI middleware: one count per answered request, by endpoint and code."""

    def __init__(self, app: ASGIApp, tally: Tally) -> None:
        self.app = app
        self.tally = tally

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tally, endpoint = self.tally, endpoint_of(scope["path"])

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                tally.count("drip_webhook_requests_total", endpoint=endpoint, code=str(message["status"]))
            await send(message)

        await self.app(scope, receive, counted)


async def flush_every(tally: Tally, store: IntakeStore, interval_ms: int) -> None:
    """Until cancelled: add the counts to Redis; a failed flush keeps them for the next one."""
    try:
        while True:
            await asyncio.sleep(interval_ms / 1000)
            try:
                await _flush(tally, store)
            except REDIS_DOWN as exc:
                log.warning("redis_unavailable", during="metrics flush", error=str(exc))
    finally:
        with contextlib.suppress(*REDIS_DOWN):
            await _flush(tally, store)


async def _flush(tally: Tally, store: IntakeStore) -> None:
    counts = tally.take()
    if not counts:
        return
    try:
        await store.add_counts(counts)
    except REDIS_DOWN:
        tally.give_back(counts)
        raise
