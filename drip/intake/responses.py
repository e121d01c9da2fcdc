"""The shapes of drip's JSON answers (also what /openapi.json publishes), encoded with msgspec."""

from __future__ import annotations

import msgspec
from starlette.responses import Response


class Accepted(msgspec.Struct, omit_defaults=True):
    """A stored message (or, with duplicate, the earlier one a dedup_id matched)."""

    id: str
    queue: str
    run_at: str
    duplicate: bool = False


class Queued(msgspec.Struct):
    """The messages a batch webhook stored, in order."""

    queued: int
    ids: list[str]


class Cancelled(msgspec.Struct):
    id: str
    queue: str
    status: str


class Status(msgspec.Struct):
    status: str


class Error(msgspec.Struct, omit_defaults=True):
    """Every refusal: what went wrong and, when one part of the request is at fault, which."""

    error: str
    field: str = ""


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, error: str, field: str = "", headers: dict[str, str] | None = None) -> Response:
    return json_response(Error(error, field), status, headers)
