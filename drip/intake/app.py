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
from drip.core.messages import now_ms
from drip.core.settings import Settings
from drip.core.timing import latest_run_at_ms
from drip.intake import counting, openapi
from drip.intake.endpoints import Intake
from drip.intake.refusals import RefusalLog
from drip.intake.responses import Cancelled, Status, error_response, json_response
from drip.store.connection import REDIS_DOWN
from drip.store.intake import IntakeStore
from drip.store.queues import Cancel, message_uuid, refusal

log = logs.get("drip.web")


class Admin:
    """Endpoints beside the webhook: health, the description, and cancellation."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self._openapi: tuple[int, bytes] = (0, b"")

    async def healthz(self, request: Request) -> Response:
        return json_response(Status("ok"))

    async def readyz(self, request: Request) -> Response:
        await self.intake.store.ping()
        return json_response(Status("ready"))

    async def openapi(self, request: Request) -> Response:
        # Rebuilt when run_at's latest valid value moves (once a day with the default horizon): ~10 ms a build.
        latest_ms = latest_run_at_ms(now_ms(), self.intake.settings.max_horizon)
        if self._openapi[0] != latest_ms:
            document = openapi.document(__version__, self.intake.settings)
            self._openapi = (latest_ms, msgspec.json.encode(document))
        return Response(self._openapi[1], media_type="application/json")

    async def cancel(self, request: Request) -> Response:
        """DELETE /messages/{id}: 200 when cancelled; 409 if cancelled or promoted already (within the
        hour Redis remembers it); 404 if Redis knows no scheduled message of that id. With authentication
        on, it takes a bearer token: cancelling is a change, as enqueueing is."""
        self.intake.auth.check_bearer(request.headers)
        message_id = message_uuid(request.path_params["id"])
        outcome, queue = await self.intake.store.cancel(message_id)
        if outcome is not Cancel.CANCELLED:
            raise refusal(message_id, outcome)
        log.info("message_cancelled", queue=queue, message_id=message_id)
        return json_response(Cancelled(message_id, queue, "cancelled"))


class Answers:
    """Errors → JSON answers; each refusal logged once (drip.intake.refusals)."""

    def __init__(self, refusals: RefusalLog) -> None:
        self.refusals = refusals

    def handlers(self) -> dict:
        handlers: dict = {
            InvalidInput: self.invalid_input, NotFound: self.not_found, Conflict: self.conflict,
            Unauthorized: self.unauthorized, TooManyRequests: self.rate_limited,
            HTTPException: self.http_error, Exception: self.unexpected,
        }
        handlers.update({cls: self.unavailable for cls in REDIS_DOWN})
        return handlers

    async def invalid_input(self, request: Request, exc: InvalidInput) -> Response:
        # Meta does not retry a 4xx: a refused WhatsApp notification is lost unless someone looks.
        level = "error" if request.url.path == "/hooks/whatsapp" else "warning"
        self.refusals.refused(request, exc.status, exc.message, exc.field, level=level)
        # After a 413 the connection is closed, so the rest of an oversized upload is not even read.
        headers = {"Connection": "close"} if exc.status == 413 else None
        return error_response(exc.status, exc.message, exc.field, headers)

    async def not_found(self, request: Request, exc: NotFound) -> Response:
        return error_response(404, str(exc))

    async def conflict(self, request: Request, exc: Conflict) -> Response:
        return error_response(409, str(exc))

    async def unauthorized(self, request: Request, exc: Unauthorized) -> Response:
        self.refusals.refused(request, 401, str(exc))
        return error_response(401, str(exc), headers={"WWW-Authenticate": "Bearer"})

    async def rate_limited(self, request: Request, exc: TooManyRequests) -> Response:
        self.refusals.refused(request, 429, str(exc))
        return error_response(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        """Starlette's own refusals: an unknown path (404), a method the route lacks (405, with `Allow`)."""
        if exc.status_code != 404:
            self.refusals.refused(request, exc.status_code, str(exc.detail))
        return error_response(exc.status_code, exc.detail, headers=exc.headers)

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        log.warning("dependency_unavailable", path=request.url.path, error=str(exc))
        return error_response(503, "Redis is unavailable: nothing was changed; retry later")

    async def unexpected(self, request: Request, exc: Exception) -> Response:
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

    return Starlette(
        # One route per path, so a 405's `Allow` lists every method the path has.
        routes=[
            Route("/enqueue", intake.enqueue, methods=["POST"]),
            Route("/api/enqueue-contact", intake.enqueue_contact, methods=["POST"]),
            Route("/webhook", intake.webhook, methods=["POST"]),
            Route("/hooks/whatsapp", intake.whatsapp_hook, methods=["GET", "POST"]),
            Route("/openapi.json", admin.openapi, methods=["GET"]),
            Route("/messages/{id}", admin.cancel, methods=["DELETE"]),
            Route("/healthz", admin.healthz, methods=["GET"]),
            Route("/readyz", admin.readyz, methods=["GET"]),
        ],
        exception_handlers=Answers(RefusalLog()).handlers(),
        middleware=[Middleware(counting.CountRequests, tally=intake.tally)],
        lifespan=lifespan,
    )
