"""Business hours: windows, holidays, and openings across weekends and daylight-saving changes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from drip.ghl import hours

MX = ZoneInfo("America/Mexico_City")
NY = ZoneInfo("America/New_York")
WEEKDAYS = hours.parse("Mon-Fri 08:00-20:00")


def at(zone, *args) -> datetime:
    return datetime(*args, tzinfo=zone)


def test_open_inside_a_window():
    """Friday 19:59:50 in Mexico City is inside Mon-Fri 08:00-20:00."""
    assert WEEKDAYS.next_opening(at(MX, 2026, 11, 27, 19, 59, 50)) is None


def test_after_friday_closing_the_next_opening_is_monday_8():
    """Friday 20:00 (closed: windows end exclusive) → Monday 08:00 local."""
    opening = WEEKDAYS.next_opening(at(MX, 2026, 11, 27, 20, 0, 0))
    assert opening == at(MX, 2026, 11, 30, 8, 0)


def test_before_opening_the_same_day():
    """Tuesday 06:00 → Tuesday 08:00."""
    assert WEEKDAYS.next_opening(at(MX, 2026, 12, 1, 6, 0)) == at(MX, 2026, 12, 1, 8, 0)


def test_holidays_roll_forward():
    """A listed holiday is closed all day: Friday's contacts roll to the next open day."""
    h = hours.parse("Mon-Fri 08:00-20:00", ["2026-11-30"])  # Monday off
    assert h.next_opening(at(MX, 2026, 11, 27, 21, 0)) == at(MX, 2026, 12, 1, 8, 0)


def test_several_windows():
    """`Mon-Fri 08:00-20:00; Sat 09:00-13:00`: Friday night opens Saturday 09:00."""
    h = hours.parse("Mon-Fri 08:00-20:00; Sat 09:00-13:00")
    assert h.next_opening(at(MX, 2026, 11, 27, 22, 0)) == at(MX, 2026, 11, 28, 9, 0)
    assert h.next_opening(at(MX, 2026, 11, 28, 10, 0)) is None


def test_a_dst_change_moves_the_instant_not_the_local_hour():
    """New York springs forward on Sunday 2026-03-08: Friday 21:00 EST → Monday 08:00 EDT is 58 h, not the 59 on the wall."""
    friday = at(NY, 2026, 3, 6, 21, 0)
    opening = WEEKDAYS.next_opening(friday)
    assert opening == at(NY, 2026, 3, 9, 8, 0)
    assert opening.utcoffset().total_seconds() == -4 * 3600  # EDT
    assert opening.timestamp() - friday.timestamp() == 58 * 3600


def test_a_dst_end_day_opens_at_local_8():
    """New York falls back on Sunday 2026-11-01: the Monday opening is 08:00 EST, 13:00 UTC."""
    opening = WEEKDAYS.next_opening(at(NY, 2026, 10, 30, 21, 0))
    assert opening.astimezone(ZoneInfo("UTC")).hour == 13


@pytest.mark.parametrize("text", ["Mon-Fri", "Mon-Fri 8-20", "Funday 08:00-20:00", "Mon 20:00-08:00",
                                  "Mon 25:00-26:00", ""])
def test_unreadable_hours_are_refused(text):
    """Hours drip cannot read raise ValueError with a hint."""
    with pytest.raises(ValueError):
        hours.parse(text)


def test_bad_holiday_is_refused():
    with pytest.raises(ValueError, match="ISO dates"):
        hours.parse("Mon-Fri 08:00-20:00", ["25/12/2026"])
