"""Reading a webhook request: its content type, and its body refused (413) before it is
buffered past the limit, so an oversized upload costs nothing."""

from __future__ import annotations

from starlette.requests import Request

from drip.core.errors import InvalidInput

_JSON_TYPES = ("application/json",)


def check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise InvalidInput("Content-Type must be application/json", "Content-Type", status=415)


async def read_json_body(request: Request, limit: int) -> bytes:
    """The raw body of a request, refused (413) before it is buffered past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise InvalidInput(f"body is larger than {limit} bytes (DRIP_MAX_BODY)", "", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"body is larger than {limit} bytes (DRIP_MAX_BODY)", "", status=413)
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body is not valid UTF-8", "") from None
    return body


def client_address(request: Request) -> str:
    """The client a rate limit is kept for when no token names it."""
    return f"ip:{request.client.host if request.client else 'unknown'}"
