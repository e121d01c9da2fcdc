"""drip's exceptions: each says what went wrong and what to do about it.

The CLI prints a DripError's message and exits non-zero; the web maps
InvalidInput to 400 and Unavailable to 503. Anything else is a bug.
"""

from __future__ import annotations


class DripError(Exception):
    """Base of every error drip raises on purpose."""


class ConfigError(DripError):
    """A DRIP_* setting is missing or malformed."""


class Unavailable(DripError):
    """Redis or PostgreSQL cannot be reached; retry once it is back."""


class InvalidInput(DripError):
    """An inbound request is malformed; `field` names the offending part ("" for the whole body)."""

    def __init__(self, message: str, field: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class HandlerError(DripError):
    """A handler reported failure (for `forward`, a non-2xx answer); the message is retried."""


class NotFound(DripError):
    """The message (or queue) asked for is unknown."""


class Conflict(DripError):
    """The request does not fit the message's state (e.g. cancelling one already promoted)."""


class Unauthorized(DripError):
    """A request without valid credentials (token, signature, or a fresh timestamp)."""


class TooManyRequests(DripError):
    """A client went over its request budget (DRIP_RATE_LIMIT); it may retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many requests: retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Defer(DripError):
    """Raised by a handler: not now, try this message again in `seconds`, without spending an attempt
    (a rate limit, a closed business window). The queue waits; other queues go on."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(f"deferred {seconds:.3f} s: {reason}")
        self.seconds = max(0.0, seconds)
        self.reason = reason


class RateLimited(Defer):
    """Raised by a handler (e.g. on an HTTP 429): the downstream's budget is spent; try this message
    again in `retry_after_s`, without spending an attempt. The queue waits in order and holds no
    thread. A route's `rate_limit` waits the same way before its handler is called."""

    def __init__(self, retry_after_s: float, reason: str = "rate limited by the downstream") -> None:
        super().__init__(retry_after_s, reason)
        self.retry_after_s = self.seconds


class Permanent(DripError):
    """Raised by a handler: this message can never succeed (e.g. the API refused it with a 4xx);
    it goes to the dead letters at once instead of being retried."""
