"""One `request_refused` line per refused request (endpoint, status, field, reason; never the payload), at
most `lines_per_s` a second per process, so a flood of bad requests cannot fill the disk; the first line
after a cut says how many were left out (`suppressed`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request

from drip.core import logs

log = logs.get("drip.intake")

#: Lines a second one web process writes for refusals at most.
LINES_PER_S = 20


class RefusalLog:
    """The refusals of one process, logged under a per-second budget."""

    def __init__(self, lines_per_s: int = LINES_PER_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.lines_per_s = lines_per_s
        self.clock = clock
        self._second = -1
        self._lines = 0
        self.suppressed = 0

    def refused(self, request: Request, status: int, reason: str, field: str = "", *, level: str = "warning") -> None:
        second = int(self.clock())
        if second != self._second:
            self._second, self._lines = second, 0
        if self._lines >= self.lines_per_s:
            self.suppressed += 1
            return
        self._lines += 1
        left_out = {"suppressed": self.suppressed} if self.suppressed else {}
        self.suppressed = 0
        getattr(log, level)("request_refused", endpoint=endpoint_of(request), method=request.method, status=status,
                            field=field, reason=reason[:300], **left_out)


def endpoint_of(request: Request) -> str:
    """The route a request addressed, as the description names it (no message id, no query string)."""
    path = request.url.path
    if path.startswith("/messages/"):
        return "/messages/{id}"
    return path[:100]
