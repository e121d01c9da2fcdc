"""The message types and the validation of inbound payloads.

Inbound bodies are decoded once with msgspec; payloads stay raw JSON bytes from
the request to the handler, so a message is never re-encoded on the hot path.
Every validation failure is an InvalidInput naming the field.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from drip import timing as timing_rules
from drip.errors import InvalidInput
from drip.timing import NOW, Timing

MAX_QUEUE_LENGTH = 200
#: Deepest JSON nesting accepted anywhere in a body.
MAX_DEPTH = 64
MAX_DEDUP_LENGTH = 200
#: Queue of a /webhook message that names neither `from` nor `conversation_id`.
DEFAULT_WEBHOOK_QUEUE = "webhook:default"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_AT = re.compile(r" - at `\$([^`]*)`$")


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


# --- inbound shapes --------------------------------------------------------------


class EnqueueItem(msgspec.Struct):
    """One message of POST /enqueue."""

    queue: str
    payload: msgspec.Raw
    delay: float | None = None
    run_at: str | float | None = None
    dedup_id: str | None = None


EnqueueBody = EnqueueItem | list[EnqueueItem]


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings inbound parsing applies (from DRIP_MAX_HORIZON and DRIP_DEFAULT_TIMEFRAME)."""

    max_horizon_s: int = 30 * 86400
    default_timeframe: Timing = NOW
    #: Dotted paths of contact fields whose values make the dedup_id (DRIP_DEDUP_FIELDS), e.g. ("contact_id",).
    dedup_fields: tuple[str, ...] = ()


class WebhookBody(msgspec.Struct):
    """The router batch format: {"messages": [...], "metadata": {...}}."""

    messages: list[msgspec.Raw]
    metadata: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class _Routing(msgspec.Struct, rename={"sender": "from"}):
    sender: str | int | None = None
    conversation_id: str | int | None = None


def decode(body: bytes, kind: Any, base: str = "") -> Any:
    """Decode and type-check; a failure becomes InvalidInput naming the field (e.g. `[2].queue`)."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(_describe(str(exc)), _field_of(str(exc), base)) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}", base) from None
    except RecursionError:
        raise InvalidInput(f"JSON is nested deeper than {MAX_DEPTH} levels", base) from None


def _field_of(error: str, base: str) -> str:
    at = _AT.search(error)
    path = at.group(1) if at else ""
    missing = _MISSING.search(error)
    if missing:
        path = f"{path}.{missing.group(1)}"
    return (base + path).lstrip(".")


def _describe(error: str) -> str:
    message = _AT.sub("", error)
    return message.replace("Object missing required field", "missing required field").replace("`", "'")


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` (cheap: bodies with few brackets are not scanned)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    depth = 0
    for token in _JSON_TOKEN.finditer(body):
        first = token.group()[0]
        if first in b"[{":
            depth += 1
            if depth > limit:
                raise InvalidInput(f"JSON is nested deeper than {limit} levels", "")
        elif first in b"]}":
            depth -= 1


def check_queue(queue: str, field_name: str) -> str:
    if not queue:
        raise InvalidInput("queue must not be empty", field_name)
    if len(queue) > MAX_QUEUE_LENGTH:
        raise InvalidInput(f"queue is longer than {MAX_QUEUE_LENGTH} characters", field_name)
    if _CONTROL.search(queue):
        raise InvalidInput("queue must not contain control characters", field_name)
    return queue


def _timing(item: EnqueueItem, now: int, rules: Rules, at: str) -> Timing:
    if item.delay is not None and item.run_at is not None:
        raise InvalidInput("give delay or run_at, not both", f"{at}run_at")
    name = f"{at}delay" if item.delay is not None else f"{at}run_at"
    try:
        if item.delay is not None:
            when = timing_rules.delay(item.delay)
        elif item.run_at is not None:
            when = timing_rules.run_at(item.run_at)
        else:
            return NOW
        timing_rules.check_horizon(when, now, rules.max_horizon_s)
    except ValueError as exc:
        raise InvalidInput(str(exc), name) from None
    return when


def parse_enqueue(body: bytes, now: int, rules: Rules) -> tuple[list[Inbound], bool]:
    """POST /enqueue: one object or an array of them. Returns the messages and whether it was an array."""
    decoded = decode(body, EnqueueBody)
    items = decoded if isinstance(decoded, list) else [decoded]
    if not items:
        raise InvalidInput("the array is empty: send at least one message", "")
    batch = isinstance(decoded, list)
    inbound = []
    for index, item in enumerate(items):
        at = f"[{index}]." if batch else ""
        check_queue(item.queue, f"{at}queue")
        if item.dedup_id is not None and not 0 < len(item.dedup_id) <= MAX_DEDUP_LENGTH:
            raise InvalidInput(f"dedup_id must have 1 to {MAX_DEDUP_LENGTH} characters", f"{at}dedup_id")
        inbound.append(
            Inbound(
                id=new_id(),
                queue=item.queue,
                payload=bytes(item.payload),
                timing=_timing(item, now, rules, at),
                timing_field=f"{at}run_at" if item.run_at is not None else f"{at}delay",
                dedup_id=item.dedup_id,
            )
        )
    return inbound, batch


def parse_webhook(body: bytes) -> list[Inbound]:
    """POST /webhook: one message per entry, queued by its sender (`from`, else `conversation_id`)."""
    batch = decode(body, WebhookBody)
    inbound = []
    for index, raw in enumerate(batch.messages):
        at = f"messages[{index}]"
        routing = decode(bytes(raw), _Routing, at)
        if routing.sender not in (None, ""):
            queue = check_queue(str(routing.sender), f"{at}.from")
        elif routing.conversation_id not in (None, ""):
            queue = check_queue(str(routing.conversation_id), f"{at}.conversation_id")
        else:
            queue = DEFAULT_WEBHOOK_QUEUE
        payload = b'{"message":' + bytes(raw) + b',"metadata":' + bytes(batch.metadata) + b"}"
        inbound.append(Inbound(id=new_id(), queue=queue, payload=payload))
    return inbound
