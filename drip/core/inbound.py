"""The checks every inbound body goes through, whatever its source: decoding against a type,
nesting depth, queue names, and the rules (horizon, default TimeFrame, dedup fields) that the
settings give parsing. Every failure is an InvalidInput naming the field.

Shared by the webhook's sources (drip.intake) and GoHighLevel's contact format (drip.ghl),
so it sits below both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from drip.core.errors import InvalidInput
from drip.core.timing import NOW, Timing

MAX_QUEUE_LENGTH = 200
#: Deepest JSON nesting accepted anywhere in a body.
MAX_DEPTH = 64
MAX_DEDUP_LENGTH = 200

#: Text without control characters: msgspec checks it with Python's re and /openapi.json publishes it, so it
#: reads the same in both (Python's `$` also matches before a final newline; `(?!\n)` closes that gap).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$(?!\n)"
#: A queue name: 1 to MAX_QUEUE_LENGTH characters, no control characters.
Queue = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_QUEUE_LENGTH, pattern=NO_CONTROL)]
#: An integer id: int64, bounds published so that no integer beyond them is described as valid.
Integer = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
#: An integer written as a float (`59232.0` is the integer 59232 in JSON), within the exactly representable range.
WholeNumber = Annotated[float, msgspec.Meta(ge=-(2.0**53), le=2.0**53, multiple_of=1)]


def id_text(value: str | float) -> str:
    """An id as queue names and payload lookups spell it: 59232.0 is "59232"."""
    return str(int(value)) if isinstance(value, float) else str(value)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_AT = re.compile(r" - at `\$([^`]*)`$")
#: msgspec's words for a failed pattern, in the user's words.
_PATTERNS = {NO_CONTROL: "must not contain control characters"}


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings inbound parsing applies (from DRIP_MAX_HORIZON and DRIP_DEFAULT_TIMEFRAME)."""

    max_horizon_s: int = 30 * 86400
    default_timeframe: Timing = NOW
    #: Dotted paths of contact fields whose values make the dedup_id (DRIP_DEDUP_FIELDS), e.g. ("contact_id",).
    dedup_fields: tuple[str, ...] = ()


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
    named = _MISSING.search(error) or _UNKNOWN.search(error)
    if named:
        path = f"{path}.{named.group(1)}"
    return (base + path).lstrip(".")


def _describe(error: str) -> str:
    message = _AT.sub("", error)
    for pattern, words in _PATTERNS.items():
        message = message.replace(f"Expected `str` matching regex {pattern!r}", words)
    message = message.replace("Object contains unknown field", "unknown field")
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
