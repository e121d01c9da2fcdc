"""The message types: a validated message about to be stored (Inbound) and what a handler
receives (Message); message ids and time formats.

Payloads stay raw JSON bytes from the request to the handler, so a message is
never re-encoded on the hot path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from drip.core.timing import NOW, Timing


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A UUIDv7: time-ordered (good for the history table's index) and unguessable."""
    value = (now_ms() << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC, e.g. 2026-11-22T01:54:03.123Z."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A validated message about to be stored."""

    id: str
    queue: str
    payload: bytes
    timing: Timing = NOW
    dedup_id: str | None = None
    #: The request field that set `timing` (named if the chained run_at passes the horizon).
    timing_field: str = ""
    location_id: str | None = None
    workflow_id: str | None = None
    contact_id: str | None = None

    def meta(self) -> bytes:
        """History-only fields, encoded once for the enqueue script."""
        return msgspec.json.encode(
            {"location_id": self.location_id, "workflow_id": self.workflow_id, "contact_id": self.contact_id}
        )


@dataclass(slots=True)
class Message:
    """What a handler receives: one message and the attempt being made on it."""

    id: str
    queue: str
    payload_json: bytes
    attempt: int
    enqueued_at_ms: int
    run_at_ms: int
    _payload: Any = field(default=None, repr=False)

    @property
    def payload(self) -> Any:
        """The payload decoded from JSON (decoded on first use)."""
        if self._payload is None:
            self._payload = msgspec.json.decode(self.payload_json)
        return self._payload

    @property
    def enqueued_at(self) -> str:
        return iso(self.enqueued_at_ms)

    @property
    def run_at(self) -> str:
        return iso(self.run_at_ms)


#: What runs on a message: returns to succeed, raises to fail (drip.handlers, drip.ghl, a user's module:function).
Handler = Callable[[Message], object]
