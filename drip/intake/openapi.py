"""GET /openapi.json: generated from the very msgspec types that decode requests and encode
answers, so the description and the validation cannot drift apart; the bounds that come from the
settings (DRIP_MAX_BATCH, DRIP_MAX_HORIZON) and the authentication in force are written in from
the running configuration, so it describes what this process does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from drip.core.settings import Settings
from drip.core.timing import latest_run_at_ms
from drip.ghl import contacts
from drip.intake import whatsapp
from drip.intake.bounds import run_at_pattern, timeframe_pattern
from drip.intake.enqueue import ONE_TIMING, EnqueueBody
from drip.intake.responses import Accepted, Cancelled, Error, Queued, Status
from drip.intake.webhook import WebhookBody

_REF = "#/components/schemas/{name}"

#: Every type the paths below name, body or answer.
_TYPES: list[Any] = [EnqueueBody, contacts.Body, WebhookBody, whatsapp.Notification, Accepted, list[Accepted], Queued,
                     Cancelled, Status, Error]

_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "a token of DRIP_API_TOKENS"},
    "signature": {"type": "apiKey", "in": "header", "name": "X-Drip-Signature",
                  "description": "sha256=<hex HMAC-SHA256 of the raw body, prefixed with "
                                 "'<X-Drip-Timestamp>.' when that header is sent> with DRIP_SIGNING_SECRET"},
    "token": {"type": "apiKey", "in": "header", "name": "X-Drip-Token",
              "description": "a token of DRIP_API_TOKENS (header name: DRIP_TOKEN_HEADER)"},
    "token_query": {"type": "apiKey", "in": "query", "name": "token", "description": "a token of DRIP_API_TOKENS"},
    "meta_signature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256",
                       "description": "sha256=<hex HMAC-SHA256 of the raw body> with DRIP_WHATSAPP_APP_SECRET"},
}


def _branch(schema: dict, kind: str) -> dict:
    """The branch of type `kind` of a generated `anyOf` (e.g. the number in `float | None`)."""
    return next(b for b in schema["anyOf"] if b.get("type") == kind)


def _bound(schemas: dict, settings: Settings, now: datetime) -> None:
    """Write the settings' bounds into the generated schemas (the checks that apply them: drip.core.timing,
    Intake._store)."""
    horizon_s = settings.max_horizon
    schemas["EnqueueItem"].update(ONE_TIMING)
    item = schemas["EnqueueItem"]["properties"]
    _branch(item["delay"], "number")["maximum"] = horizon_s
    latest_ms = latest_run_at_ms(round(now.timestamp() * 1000), horizon_s)
    _branch(item["run_at"], "number")["maximum"] = latest_ms // 1000
    _branch(item["run_at"], "string")["pattern"] = run_at_pattern(datetime.fromtimestamp(latest_ms / 1000, UTC))
    for name in ("CustomData", "MarketplaceData"):
        timeframe = schemas[name]["properties"]["TimeFrame"]
        _branch(timeframe, "string")["pattern"] = timeframe_pattern(horizon_s)
        _branch(timeframe, "number")["maximum"] = horizon_s
    schemas["WebhookBody"]["properties"]["messages"]["maxItems"] = settings.max_batch


def _security(settings: Settings) -> dict[str, list]:
    """Each endpoint's accepted credentials under these settings (none: open, as drip.intake.auth decides)."""
    tokens, signed = [{"bearer": []}] if settings.tokens else [], [{"signature": []}] if settings.signing_secret else []
    shared = [{"token": []}, {"token_query": []}] if settings.tokens else []
    meta = [{"meta_signature": []}] if settings.whatsapp_app_secret or settings.require_auth else []
    # A cancellation takes a bearer token whenever authentication is on (none works without DRIP_API_TOKENS).
    cancel = [{"bearer": []}] if tokens or signed else []
    return {"intake": tokens + signed, "contact": tokens + signed + shared, "cancel": cancel, "whatsapp": meta}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _answers(schemas: dict, ok: int, ok_schema: dict, *refusals: int) -> dict:
    answers = {str(ok): {"description": "stored" if ok in (200, 202) else "ok", "content": _json(ok_schema)}}
    reasons = {400: "invalid input (the field is named)", 401: "missing or wrong credentials",
               403: "verification refused", 404: "unknown", 409: "conflicts with the message's state",
               413: "body too large", 415: "not JSON", 429: "over the rate limit (see Retry-After)",
               503: "Redis or PostgreSQL unavailable: nothing was stored"}
    for status in refusals:
        answers[str(status)] = {"description": reasons[status], "content": _json(schemas["Error"])}
    return answers


def document(version: str, settings: Settings, now: datetime | None = None) -> dict:
    """The description for these settings, as of `now` (run_at's latest value moves with the clock)."""
    refs, components = msgspec.json.schema_components(_TYPES, ref_template=_REF)
    _bound(components, settings, now or datetime.now(UTC))
    named = dict(zip(["Enqueue", "Contact", "Webhook", "WhatsApp", "Accepted", "AcceptedList", "Queued",
                      "Cancelled", "Status", "Error"], refs, strict=True))
    _branch(named["Enqueue"], "array")["maxItems"] = settings.max_batch
    security = _security(settings)
    schemes = {name: dict(_SCHEMES[name]) for requirements in security.values() for r in requirements for name in r}
    if "token" in schemes:
        schemes["token"]["name"] = settings.token_header

    def post(kind: str, summary: str, body: dict, ok: int, ok_schema: dict) -> dict:
        """A webhook operation: its credentials under these settings, and 401 only where they are checked."""
        refusals = (400, 401, 413, 415, 429, 503) if security[kind] else (400, 413, 415, 429, 503)
        return {"summary": summary, "security": security[kind],
                "requestBody": {"required": True, "content": _json(body)},
                "responses": _answers(named, ok, ok_schema, *refusals)}

    cancel_refusals = (401, 404, 409, 503) if security["cancel"] else (404, 409, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "drip", "version": version,
                 "description": "Messages in by webhook, handled in order per queue and in parallel across queues. "
                                f"At most {settings.max_body} bytes a body (DRIP_MAX_BODY, else 413), JSON nested "
                                "at most 64 levels deep, at most DRIP_MAX_BATCH messages a request."},
        "paths": {
            "/enqueue": {"post": post(
                "intake", "Store one message, or an array of them (all or nothing)", named["Enqueue"],
                202, {"anyOf": [named["Accepted"], named["AcceptedList"]]})},
            "/api/enqueue-contact": {"post": post(
                "contact", "A GoHighLevel workflow webhook: the contact, dripped by customData.TimeFrame",
                named["Contact"], 202, named["Accepted"])},
            "/webhook": {"post": post(
                "intake", "A batch {messages, metadata}: one message per entry, queued by its sender",
                named["Webhook"], 202, named["Queued"])},
            "/hooks/whatsapp": {
                "get": {
                    "summary": "Meta's verification handshake",
                    "security": [],
                    "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                   for n in ("hub.mode", "hub.verify_token", "hub.challenge")],
                    "responses": {"200": {"description": "hub.challenge, echoed",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                                  "403": {"description": "verification refused", "content": _json(named["Error"])}},
                },
                "post": post("whatsapp", "WhatsApp Cloud API notifications (X-Hub-Signature-256 checked when "
                             "DRIP_WHATSAPP_APP_SECRET is set)", named["WhatsApp"], 200, named["Queued"]),
            },
            "/messages/{id}": {"delete": {
                "summary": "Cancel a scheduled message",
                "security": security["cancel"],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _answers(named, 200, named["Cancelled"], *cancel_refusals),
            }},
            "/healthz": {"get": {"summary": "The process is up", "security": [],
                                 "responses": _answers(named, 200, named["Status"])}},
            "/readyz": {"get": {"summary": "Redis answers", "security": [],
                                "responses": _answers(named, 200, named["Status"], 503)}},
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": _json({"type": "object"})}}}},
        },
        "components": {"schemas": components, "securitySchemes": schemes},
    }
