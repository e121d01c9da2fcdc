"""`drip web`'s Starlette app: the webhook endpoints (drip.intake.endpoints), health,
cancellation, and the mapping of errors to JSON answers: invalid input → 4xx naming the
field, Redis down → 503. Everything here touches Redis only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip import __version__
from drip.core import logs
from drip.core import settings as settings_module
from drip.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from drip.core.settings import Settings
from drip.intake import counting, openapi
from drip.intake.endpoints import Intake
from drip.intake.responses import Cancelled, Status, error_response, json_response
from drip.store.connection import REDIS_DOWN
from drip.store.intake import IntakeStore
from drip.store.queues import Cancel, message_uuid, refusal

log = logs.get("drip.web")


class Admin:
    """Endpoints beside the webhook: health, the description, and cancellation."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self._openapi: bytes | None = None

    async def healthz(self, request: Request) -> Response:
        return json_response(Status("ok"))

    async def readyz(self, request: Request) -> Response:
        await self.intake.store.ping()
        return json_response(Status("ready"))

    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = msgspec.json.encode(openapi.document(__version__))
        return Response(self._openapi, media_type="application/json")

    async def cancel(self, request: Request) -> Response:
        """DELETE /messages/{id}: 200 when cancelled; 409 if cancelled or promoted already (within the
        hour Redis remembers it); 404 if Redis knows no scheduled message of that id."""
        message_id = message_uuid(request.path_params["id"])
        outcome, queue = await self.intake.store.cancel(message_id)
        if outcome is not Cancel.CANCELLED:
            raise refusal(message_id, outcome)
        log.info("message_cancelled", queue=queue, message_id=message_id)
        return json_response(Cancelled(message_id, queue, "cancelled"))


async def _invalid_input(request: Request, exc: InvalidInput) -> Response:
    # After a 413 the connection is closed, so the rest of an oversized upload is not even read.
    headers = {"Connection": "close"} if exc.status == 413 else None
    return error_response(exc.status, exc.message, exc.field, headers)


async def _not_found(request: Request, exc: NotFound) -> Response:
    return error_response(404, str(exc))


async def _conflict(request: Request, exc: Conflict) -> Response:
    return error_response(409, str(exc))


async def _unauthorized(request: Request, exc: Unauthorized) -> Response:
    log.warning("request_refused", path=request.url.path, reason=str(exc))
    return error_response(401, str(exc), headers={"WWW-Authenticate": "Bearer"})


async def _rate_limited(request: Request, exc: TooManyRequests) -> Response:
    return error_response(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return error_response(exc.status_code, exc.detail)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("dependency_unavailable", path=request.url.path, error=str(exc))
    return error_response(503, "Redis is unavailable: nothing was changed; retry later")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("request_failed", path=request.url.path)
    return error_response(500, "internal error: nothing was stored; retry later")


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app (uvicorn calls this factory; tests pass their own settings)."""
    settings = settings or settings_module.load()
    intake = Intake(settings)
    admin = Admin(intake)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        intake.store = IntakeStore.from_settings(settings)
        flusher = asyncio.create_task(counting.flush_every(intake.tally, intake.store, settings.metrics_flush_ms))
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await intake.store.close()

    handlers: dict = {
        InvalidInput: _invalid_input, NotFound: _not_found, Conflict: _conflict,
        Unauthorized: _unauthorized, TooManyRequests: _rate_limited,
        HTTPException: _http_error, Exception: _unexpected,
    }
    handlers.update({cls: _unavailable for cls in REDIS_DOWN})
    return Starlette(
        routes=[
            Route("/enqueue", intake.enqueue, methods=["POST"]),
            Route("/api/enqueue-contact", intake.enqueue_contact, methods=["POST"]),
            Route("/webhook", intake.webhook, methods=["POST"]),
            Route("/hooks/whatsapp", intake.whatsapp, methods=["POST"]),
            Route("/hooks/whatsapp", intake.whatsapp_verify, methods=["GET"]),
            Route("/openapi.json", admin.openapi, methods=["GET"]),
            Route("/messages/{id}", admin.cancel, methods=["DELETE"]),
            Route("/healthz", admin.healthz, methods=["GET"]),
            Route("/readyz", admin.readyz, methods=["GET"]),
        ],
        exception_handlers=handlers,
        middleware=[Middleware(counting.CountRequests, tally=intake.tally)],
        lifespan=lifespan,
    )
