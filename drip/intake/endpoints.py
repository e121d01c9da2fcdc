"""The webhook endpoints: authenticate, limit and check a request, store its messages with
one Lua call, answer 202 (200 for WhatsApp, which wants it).

This is the hot path, and it touches Redis only: no broker, no PostgreSQL. It
never answers 2xx for something it did not store.
"""

from __future__ import annotations

import hmac
import math

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from drip.core import logs
from drip.core.errors import InvalidInput, TooManyRequests, Unauthorized
from drip.core.inbound import Rules, check_depth
from drip.core.messages import Inbound, iso, now_ms
from drip.core.settings import Settings
from drip.core.timing import NOW, parse_rate, parse_timeframe
from drip.ghl import contacts
from drip.intake import whatsapp
from drip.intake.auth import Authenticator, check_meta_signature
from drip.intake.enqueue import parse_enqueue
from drip.intake.request import check_content_type, client_address, read_json_body
from drip.intake.responses import Accepted, Queued, error_response, json_response
from drip.intake.webhook import parse_webhook
from drip.store.intake import IntakeStore
from drip.store.queues import Stored
from drip.store.tallies import Tally

log = logs.get("drip.intake")

def accepted_json(a: Stored) -> Accepted:
    return Accepted(a.id, a.queue, iso(a.run_at_ms), a.duplicate)


class Intake:
    """The webhook endpoints, bound to one store and the settings: who may post, how much, and what."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        default = parse_timeframe(settings.default_timeframe) if settings.default_timeframe else NOW
        fields = tuple(f.strip() for f in (settings.dedup_fields or "").split(",") if f.strip())
        self.rules = Rules(max_horizon_s=settings.max_horizon, default_timeframe=default, dedup_fields=fields)
        self.auth = Authenticator(settings)
        self.rate = parse_rate(settings.rate_limit) if settings.rate_limit else None
        self.store: IntakeStore | None = None
        self.tally = Tally()

    async def _receive(self, request: Request, *, shared_secret: bool = False) -> bytes:
        """Authenticate, read and rate-limit a request; returns its raw body.

        Credentials are checked before anything touches Redis, so a refused request is cheap.
        """
        check_content_type(request)
        # Only a shared-secret endpoint reads ?token=; the others skip parsing the query string.
        query = request.query_params if shared_secret else {}
        client = self.auth.before_body(request.headers, query, shared_secret=shared_secret)
        body = await read_json_body(request, self.settings.max_body)
        if self.auth.enabled and client is None:
            client = self.auth.after_body(request.headers, body)
        await self._limit(client or client_address(request))
        check_depth(body)
        return body

    async def _limit(self, client: str) -> None:
        if self.rate is None:
            return
        wait_ms = await self.store.take_token(client, *self.rate)
        if wait_ms:
            raise TooManyRequests(max(1, math.ceil(wait_ms / 1000)))

    async def _store(self, messages: list[Inbound], source: str, field: str = "") -> list[Accepted]:
        """Store the request's messages at once, counting them by `source` (drip_messages_accepted_total).
        More than DRIP_MAX_BATCH is a 400 naming the array (the description's maxItems), not a 413: the body
        may be small, its count is what is refused."""
        if len(messages) > self.settings.max_batch:
            raise InvalidInput(f"more than {self.settings.max_batch} messages in one request (DRIP_MAX_BATCH)", field)
        accepted = [accepted_json(a) for a in await self.store.enqueue(messages)] if messages else []
        new = 0
        for a in accepted:
            log.info("message_accepted", queue=a.queue, message_id=a.id, run_at=a.run_at, duplicate=a.duplicate)
            new += not a.duplicate
        if new:
            self.tally.count("drip_messages_accepted_total", new, source=source)
        return accepted

    async def enqueue(self, request: Request) -> Response:
        messages, batch = parse_enqueue(await self._receive(request), now_ms(), self.rules)
        answer = await self._store(messages, "enqueue")
        return json_response(answer if batch else answer[0], 202)

    async def enqueue_contact(self, request: Request) -> Response:
        body = await self._receive(request, shared_secret=True)
        stored = await self._store([contacts.parse(body, now_ms(), self.rules)], "ghl")
        return json_response(stored[0], 202)

    async def webhook(self, request: Request) -> Response:
        stored = await self._store(parse_webhook(await self._receive(request)), "webhook", "messages")
        return json_response(Queued(len(stored), [a.id for a in stored]), 202)

    async def whatsapp_hook(self, request: Request) -> Response:
        """/hooks/whatsapp: GET is Meta's handshake, POST its notifications."""
        return await (self.whatsapp_verify(request) if request.method in ("GET", "HEAD") else self.whatsapp(request))

    async def whatsapp_verify(self, request: Request) -> Response:
        """GET /hooks/whatsapp: Meta's subscription handshake; echo hub.challenge for the right token."""
        q = request.query_params
        expected = self.settings.whatsapp_verify_token
        presented = q.get("hub.verify_token", "")
        if expected and q.get("hub.mode") == "subscribe" and hmac.compare_digest(presented.encode(), expected.encode()):
            return PlainTextResponse(q.get("hub.challenge", ""))
        log.warning("whatsapp_verification_refused", mode=q.get("hub.mode"))
        return error_response(403, "verification failed: wrong hub.mode or hub.verify_token")

    async def whatsapp(self, request: Request) -> Response:
        """POST /hooks/whatsapp: Meta's notifications; 200 for everything stored (or already stored)."""
        check_content_type(request)
        body = await read_json_body(request, self.settings.max_body)
        secret = self.settings.whatsapp_app_secret
        if secret:
            check_meta_signature(secret, request.headers.get("x-hub-signature-256"), body)
        elif self.settings.require_auth:
            raise Unauthorized("DRIP_WHATSAPP_APP_SECRET is not set: signed notifications cannot be checked")
        await self._limit(client_address(request))
        check_depth(body)
        stored = await self._store(whatsapp.parse(body), "whatsapp", "entry")
        return json_response(Queued(sum(not a.duplicate for a in stored), [a.id for a in stored]), 200)
