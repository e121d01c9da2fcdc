"""GET /openapi.json: generated from the very msgspec types that decode requests and encode
answers, so the description and the validation cannot drift apart."""

from __future__ import annotations

from typing import Any

import msgspec

from drip.ghl.contacts import ContactBody
from drip.intake import whatsapp
from drip.intake.enqueue import EnqueueBody
from drip.intake.responses import Accepted, Cancelled, Error, Queued, Status
from drip.intake.webhook import WebhookBody

_REF = "#/components/schemas/{name}"

#: Every type the paths below name, body or answer.
_TYPES: list[Any] = [EnqueueBody, ContactBody, WebhookBody, whatsapp.Notification, Accepted, list[Accepted], Queued,
                     Cancelled, Status, Error]


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


def document(version: str) -> dict:
    refs, components = msgspec.json.schema_components(_TYPES, ref_template=_REF)
    named = dict(zip(["Enqueue", "Contact", "Webhook", "WhatsApp", "Accepted", "AcceptedList", "Queued",
                      "Cancelled", "Status", "Error"], refs, strict=True))
    intake = (400, 401, 413, 415, 429, 503)
    secured = [{"bearer": []}, {"signature": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "drip", "version": version,
                 "description": "Messages in by webhook, handled in order per queue and in parallel across queues."},
        "paths": {
            "/enqueue": {"post": {
                "summary": "Store one message, or an array of them (all or nothing)",
                "security": secured,
                "requestBody": {"required": True, "content": _json(named["Enqueue"])},
                "responses": _answers(named, 202, {"anyOf": [named["Accepted"], named["AcceptedList"]]}, *intake),
            }},
            "/api/enqueue-contact": {"post": {
                "summary": "A GoHighLevel workflow webhook: the contact, dripped by customData.TimeFrame",
                "security": [*secured, {"token": []}, {"token_query": []}],
                "requestBody": {"required": True, "content": _json(named["Contact"])},
                "responses": _answers(named, 202, named["Accepted"], *intake),
            }},
            "/webhook": {"post": {
                "summary": "A batch {messages, metadata}: one message per entry, queued by its sender",
                "security": secured,
                "requestBody": {"required": True, "content": _json(named["Webhook"])},
                "responses": _answers(named, 202, named["Queued"], *intake),
            }},
            "/hooks/whatsapp": {
                "get": {
                    "summary": "Meta's verification handshake",
                    "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                   for n in ("hub.mode", "hub.verify_token", "hub.challenge")],
                    "responses": {"200": {"description": "hub.challenge, echoed",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                                  "403": {"description": "verification refused", "content": _json(named["Error"])}},
                },
                "post": {
                    "summary": "WhatsApp Cloud API notifications (X-Hub-Signature-256 checked)",
                    "parameters": [{"name": "X-Hub-Signature-256", "in": "header", "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": _json(named["WhatsApp"])},
                    "responses": _answers(named, 200, named["Queued"], *intake),
                },
            },
            "/messages/{id}": {"delete": {
                "summary": "Cancel a scheduled message",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _answers(named, 200, named["Cancelled"], 404, 409, 503),
            }},
            "/healthz": {"get": {"summary": "The process is up", "responses": _answers(named, 200, named["Status"])}},
            "/readyz": {"get": {"summary": "Redis answers", "responses": _answers(named, 200, named["Status"], 503)}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": _json({"type": "object"})}}}},
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a token of DRIP_API_TOKENS"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Drip-Signature",
                              "description": "sha256=<hex HMAC-SHA256 of the raw body, prefixed with "
                                             "'<X-Drip-Timestamp>.' when that header is sent> with DRIP_SIGNING_SECRET"},
                "token": {"type": "apiKey", "in": "header", "name": "X-Drip-Token",
                          "description": "a token of DRIP_API_TOKENS (header name: DRIP_TOKEN_HEADER)"},
                "token_query": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }
