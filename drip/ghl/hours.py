"""Business hours: the windows in which a location's contacts may be released.

`Mon-Fri 08:00-20:00`, several joined by `;` (`Mon-Fri 08:00-20:00; Sat 09:00-13:00`),
in the location's IANA timezone, with listed holidays closed. Times are local wall
times, so a daylight-saving change moves the UTC instant of an opening, never the
local hour; durations are taken between instants (timestamps), never wall times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WINDOW = re.compile(r"^\s*([a-z,\- ]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)
#: How far ahead an opening is looked for (a location closed longer than this never opens).
_HORIZON_DAYS = 60


@dataclass(frozen=True)
class Hours:
    """Weekly windows (weekday 0 = Monday, start, end) and closed dates."""

    windows: tuple[tuple[int, time, time], ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def next_opening(self, now: datetime) -> datetime | None:
        """None if `now` (aware, in the location's zone) is inside a window; else the next opening."""
        for offset in range(_HORIZON_DAYS):
            day = now.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            starts = []
            for weekday, start, end in self.windows:
                if weekday != day.weekday():
                    continue
                opens = datetime.combine(day, start, tzinfo=now.tzinfo)
                closes = datetime.combine(day, end, tzinfo=now.tzinfo) if end != time(0) else \
                    datetime.combine(day + timedelta(days=1), time(0), tzinfo=now.tzinfo)
                if opens.timestamp() <= now.timestamp() < closes.timestamp():
                    return None
                if opens.timestamp() > now.timestamp():
                    starts.append(opens)
            if starts:
                return min(starts, key=lambda d: d.timestamp())
        raise ValueError(f"no opening within {_HORIZON_DAYS} days")


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first[:3] not in _DAYS or (last and last[:3] not in _DAYS):
            raise ValueError(f"unknown day in {text!r}: use Mon, Tue, Wed, Thu, Fri, Sat, Sun")
        a, b = _DAYS.index(first[:3]), _DAYS.index((last or first)[:3])
        days += list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
    return days


def parse(text: str, holidays: list[str] | tuple[str, ...] = ()) -> Hours:
    """`Mon-Fri 08:00-20:00[; Sat 09:00-13:00 ...]` and ISO holiday dates → Hours (ValueError if unreadable)."""
    windows = []
    for spec in text.split(";"):
        match = _WINDOW.match(spec)
        if not match:
            raise ValueError(f"cannot read business hours {spec.strip()!r}: use e.g. 'Mon-Fri 08:00-20:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups()[1:])
        if not (h1 < 24 and m1 < 60 and m2 < 60 and (h2 < 24 or (h2 == 24 and m2 == 0))):
            raise ValueError(f"not a time of day in {spec.strip()!r}")
        start, end = time(h1, m1), time(0) if h2 == 24 else time(h2, m2)
        if end != time(0) and end <= start:
            raise ValueError(f"a window must end after it starts: {spec.strip()!r}")
        windows += [(day, start, end) for day in _days(match.group(1))]
    try:
        closed = frozenset(date.fromisoformat(d.strip()) for d in holidays if d.strip())
    except ValueError:
        raise ValueError(f"holidays must be ISO dates (2026-12-25), got {list(holidays)!r}") from None
    return Hours(tuple(windows), closed)
