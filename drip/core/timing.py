"""When a message runs: TimeFrames ("60 to 300"), delays and absolute run_at values.

Only the *rule* is decided here; the enqueue script turns it into a run_at on
Redis's clock, so every process schedules and promotes against the same time,
and a drip chain's tail is read and extended in the same atomic call.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_UNITS_MS = {"": 1000, "s": 1000, "m": 60_000, "h": 3_600_000}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)"
_TIMEFRAME = re.compile(rf"^\s*{_NUMBER}\s*(?:(?:to|-)\s*{_NUMBER})?\s*$", re.IGNORECASE)


#: Beyond this many ms (~285,000 years) a time is no time drip can keep: refused, not overflowed into a 500.
_MAX_MS = 2**53


def _ms(ms: float, what: str) -> int:
    if not ms <= _MAX_MS:  # also NaN and infinity
        raise ValueError(f"{what} is too far ahead: beyond any DRIP_MAX_HORIZON")
    return round(ms)


@dataclass(frozen=True, slots=True)
class Timing:
    """A message's timing rule, as the enqueue script takes it.

    kind "now": run at once; "delay": `low` ms after now; "at": at epoch ms
    `low` (now if that has passed); "spread": `low`..`high` ms after the later
    of now and the queue's tail (drip chaining).
    """

    kind: str = "now"
    low: int = 0
    high: int = 0

    @property
    def furthest_ms(self) -> int:
        """How far ahead of its base this rule may reach (for the horizon check)."""
        return self.high if self.kind == "spread" else self.low


NOW = Timing()


def parse_timeframe(text: str) -> Timing:
    """'60 to 300', '60-300', '120', '1m to 5m', '0.05 to 0.1' (seconds unless s/m/h) → a spread.

    A unit written only after the second number applies to both ('1 to 5m' is
    1 to 5 minutes); the two ends may come in either order ('300 to 60' is 60 to 300:
    a range typed by hand in a GoHighLevel workflow). Raises ValueError with a message for the user.
    """
    match = _TIMEFRAME.match(text)
    if not match:
        raise ValueError(f"cannot read TimeFrame {text!r}: use '60 to 300', '60-300', '120' or '1m to 5m'")
    low, low_unit, high, high_unit = match.groups()
    if high is None:
        high, high_unit = low, low_unit
    elif not low_unit:
        low_unit = high_unit
    low_ms = _ms(float(low) * _UNITS_MS[low_unit.lower()], f"TimeFrame {text[:40]!r}")
    high_ms = _ms(float(high) * _UNITS_MS[high_unit.lower()], f"TimeFrame {text[:40]!r}")
    return Timing("spread", min(low_ms, high_ms), max(low_ms, high_ms))


def delay(seconds: float) -> Timing:
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError("delay must be a number of seconds >= 0")
    return Timing("delay", _ms(seconds * 1000, "delay")) if seconds else NOW


def run_at(value: str | float) -> Timing:
    """An absolute time: ISO-8601 (a zone-less time is UTC) or epoch seconds."""
    if isinstance(value, str):
        try:
            return run_at(float(value))  # epoch seconds written as a string
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"run_at {value!r} is neither ISO-8601 nor epoch seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return Timing("at", round(parsed.timestamp() * 1000))
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError("run_at must be epoch seconds >= 0")
    return Timing("at", _ms(value * 1000, "run_at"))


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*(?::\s*(\d+))?\s*$", re.IGNORECASE)
_PER_S = {"s": 1, "m": 60, "h": 3600}


def parse_rate(text: str) -> tuple[float, int]:
    """'100/s', '6000/m' or '100/s:300' (a burst of 300) → (tokens per second, burst)."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"cannot read rate {text!r}: use '100/s', '6000/m' or '100/s:300' (with a burst of 300)")
    amount, unit, burst = float(match.group(1)), match.group(2).lower(), match.group(3)
    per_second = amount / _PER_S[unit]
    if per_second <= 0:
        raise ValueError(f"rate {text!r} must be above zero")
    return per_second, int(burst) if burst else max(1, round(amount if unit == "s" else per_second))


def latest_run_at_ms(now_ms: int, horizon_s: int) -> int:
    """The latest run_at accepted: DRIP_MAX_HORIZON after the start of the current UTC day (hour, minute or
    second for horizons under two days, hours or minutes). A bound that holds still for a day lets
    /openapi.json state it as a number that stays true while a client uses the description."""
    step_ms = next((s for s in (86_400_000, 3_600_000, 60_000) if horizon_s * 1000 >= 2 * s), 1000)
    return now_ms - now_ms % step_ms + horizon_s * 1000


def check_horizon(timing: Timing, now_ms: int, horizon_s: int) -> None:
    """Refuse what reaches further than DRIP_MAX_HORIZON ahead (and milliseconds sent as seconds)."""
    if timing.kind == "at":
        beyond = timing.low > latest_run_at_ms(now_ms, horizon_s)
    else:
        beyond = timing.furthest_ms > horizon_s * 1000
    if beyond:
        hint = " (milliseconds sent as seconds?)" if timing.kind == "at" and timing.low > now_ms * 100 else ""
        raise ValueError(f"more than {horizon_s} s ahead (DRIP_MAX_HORIZON){hint}")


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_DURATION_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """'30d', '12h', '90m', '45s', '2w' or plain seconds → seconds ('0' is zero)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"cannot read duration {text!r}: use e.g. '30d', '12h', '90m', '45s' or 0")
    return int(match.group(1)) * _DURATION_S[match.group(2).lower()]
