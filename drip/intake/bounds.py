"""The rules that depend on the settings, as JSON Schema for /openapi.json: TimeFrames and run_at values
within DRIP_MAX_HORIZON. A type cannot carry them (the horizon is read at start-up and run_at moves with
the clock), so each pattern here describes a part of what drip.core.timing accepts, none of what it refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Seconds per TimeFrame unit, and the unit as a case-insensitive class ("s" may be left out).
_UNITS = {"s": (1, "[sS]?"), "m": (60, "[mM]"), "h": (3600, "[hH]")}


def _number(horizon_s: int, factor_s: int) -> str | None:
    """A number of units whose value stays within the horizon (fewer digits than 10**d * factor > horizon)."""
    if factor_s > horizon_s:
        return None
    digits = len(str(horizon_s // factor_s)) - 1
    return "[0-9]{1," + str(digits) + "}(\\.[0-9]{1,3})?" if digits else "0"


def timeframe_pattern(horizon_s: int) -> str:
    """TimeFrames such as '60 to 300', '120', '1m to 5m' that parse_timeframe reads within the horizon."""
    forms = []
    for factor_s, unit in _UNITS.values():
        number = _number(horizon_s, factor_s)
        if number is None:
            continue
        optional = unit if unit.endswith("?") else unit + "?"
        forms += [f"{number} *{unit}", f"{number} *{optional} *([tT][oO]|-) *{number} *{unit}"]
    return "^ *(" + "|".join(forms) + ") *$"


def run_at_pattern(latest: datetime) -> str:
    """ISO-8601 times (from 1970) of the months before the one a day before `latest`, with any UTC offset:
    times that drip.core.timing.run_at reads and check_horizon lets through (latest_run_at_ms)."""
    cutoff = latest.astimezone(UTC) - timedelta(days=1)
    years = "|".join(str(year) for year in range(1970, cutoff.year))
    dates = [f"({years})-(0[1-9]|1[0-2])"] if years else []
    if cutoff.month > 1:
        dates.append(f"{cutoff.year}-(" + "|".join(f"{m:02d}" for m in range(1, cutoff.month)) + ")")
    day = "(0[1-9]|1[0-9]|2[0-8])"
    clock = "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
    return "^(" + "|".join(dates) + f")-{day}{clock}$"
