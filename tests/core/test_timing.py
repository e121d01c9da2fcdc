"""Timing rules: TimeFrames ("60 to 300"), delays, absolute run_at values and the horizon check."""

from __future__ import annotations

import pytest

from drip.core.timing import (
    NOW,
    Timing,
    check_horizon,
    delay,
    parse_duration,
    parse_timeframe,
    run_at,
)

#: 2026-11-18T11:06:40Z, a few days before the run_at values below.
NOW_MS = 1_795_000_000_000
HORIZON_S = 30 * 86400
HORIZON_MS = HORIZON_S * 1000


# --- parse_timeframe ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("60 to 300", 60_000, 300_000),
        ("60-300", 60_000, 300_000),
        ("60 - 300", 60_000, 300_000),
        ("  60 TO 300 ", 60_000, 300_000),
        ("25 to 120 ", 25_000, 120_000),
    ],
)
def test_timeframe_range_in_seconds(text, low, high):
    """A range of seconds, written with `to` or `-`, in any case and spacing, is a spread in ms."""
    assert parse_timeframe(text) == Timing("spread", low, high)


def test_timeframe_single_number_is_a_fixed_spread():
    """A single number is a fixed gap: minimum and maximum are both that many seconds."""
    assert parse_timeframe("120") == Timing("spread", 120_000, 120_000)


def test_timeframe_fractional_seconds():
    """Fractional seconds are kept to the millisecond ("0.05 to 0.1" is 50..100 ms)."""
    assert parse_timeframe("0.05 to 0.1") == Timing("spread", 50, 100)


def test_timeframe_fraction_without_leading_zero():
    """A number may start at its decimal point (".5 to 1.5" is 500..1500 ms)."""
    assert parse_timeframe(".5 to 1.5") == Timing("spread", 500, 1_500)


def test_timeframe_minutes_on_both_numbers():
    """The unit m on both numbers means minutes ("1m to 5m" is 1..5 minutes)."""
    assert parse_timeframe("1m to 5m") == Timing("spread", 60_000, 300_000)


def test_timeframe_unit_on_the_second_number_applies_to_both():
    """A unit written only after the second number applies to the first too ("1 to 5m")."""
    assert parse_timeframe("1 to 5m") == Timing("spread", 60_000, 300_000)


def test_timeframe_hours():
    """The unit h means hours ("1h" is a fixed gap of one hour)."""
    assert parse_timeframe("1h") == Timing("spread", 3_600_000, 3_600_000)


@pytest.mark.parametrize(
    "text", ["soon", "", "5 to", "to 5", "60 to 300 to 500", "1d", "-1 to 5", "300 to 60"]
)
def test_timeframe_unreadable_is_refused_with_a_readable_message(text):
    """An unreadable TimeFrame (or one with min > max) raises ValueError naming the TimeFrame as given."""
    with pytest.raises(ValueError) as caught:
        parse_timeframe(text)
    message = str(caught.value)
    assert "TimeFrame" in message
    assert repr(text) in message


def test_timeframe_minimum_above_maximum_says_so():
    """"300 to 60" is refused because its minimum is above its maximum, and the message says that."""
    with pytest.raises(ValueError, match="minimum above its maximum"):
        parse_timeframe("300 to 60")


def test_timeframe_unreadable_message_shows_an_accepted_form():
    """The message for an unreadable TimeFrame shows a form that would be accepted."""
    with pytest.raises(ValueError, match="60 to 300"):
        parse_timeframe("soon")


# --- delay -------------------------------------------------------------------------


def test_delay_zero_is_now():
    """A delay of 0 s is the "now" rule."""
    assert delay(0) == NOW


def test_delay_in_seconds_becomes_milliseconds():
    """delay(1.5) is a delay of 1500 ms."""
    assert delay(1.5) == Timing("delay", 1_500)


def test_negative_delay_is_refused():
    """A negative delay raises ValueError."""
    with pytest.raises(ValueError, match="delay"):
        delay(-1)


# --- run_at ------------------------------------------------------------------------


def test_run_at_iso_with_z():
    """An ISO-8601 time ending in Z is that UTC instant, in epoch ms."""
    assert run_at("2026-11-22T10:00:00Z") == Timing("at", 1_795_341_600_000)


def test_run_at_iso_honours_its_offset():
    """An ISO-8601 time with +02:00 is two hours earlier in UTC."""
    assert run_at("2026-11-22T10:00:00+02:00") == Timing("at", 1_795_341_600_000 - 7_200_000)


def test_run_at_iso_without_zone_is_utc():
    """An ISO-8601 time without a zone is read as UTC, not local time."""
    assert run_at("2026-11-22T10:00:00") == Timing("at", 1_795_341_600_000)


def test_run_at_epoch_seconds():
    """An integer number is epoch seconds."""
    assert run_at(1_795_312_813) == Timing("at", 1_795_312_813_000)


def test_run_at_fractional_epoch_seconds():
    """A fractional number of epoch seconds keeps its milliseconds."""
    assert run_at(1_795_312_813.5) == Timing("at", 1_795_312_813_500)


@pytest.mark.parametrize("value", ["soon", "", "2026-13-01T00:00:00Z", "tomorrow at noon", "22/11/2026"])
def test_run_at_garbage_is_refused(value):
    """A string that is not ISO-8601 raises ValueError quoting it."""
    with pytest.raises(ValueError) as caught:
        run_at(value)
    assert repr(value) in str(caught.value)


def test_run_at_negative_epoch_is_refused():
    """A negative epoch raises ValueError."""
    with pytest.raises(ValueError):
        run_at(-1)


# --- check_horizon -----------------------------------------------------------------


@pytest.mark.parametrize(
    "timing",
    [
        NOW,
        Timing("delay", HORIZON_MS),
        Timing("at", NOW_MS + HORIZON_MS),
        Timing("spread", 0, HORIZON_MS),
    ],
)
def test_horizon_allows_up_to_the_limit(timing):
    """A rule reaching exactly DRIP_MAX_HORIZON ahead passes."""
    check_horizon(timing, NOW_MS, HORIZON_S)


@pytest.mark.parametrize(
    "timing",
    [
        Timing("delay", HORIZON_MS + 1),
        Timing("at", NOW_MS + HORIZON_MS + 1),
        Timing("spread", 0, HORIZON_MS + 1),
    ],
)
def test_horizon_refuses_beyond_the_limit(timing):
    """A rule reaching 1 ms beyond DRIP_MAX_HORIZON raises ValueError naming the horizon."""
    with pytest.raises(ValueError, match="DRIP_MAX_HORIZON"):
        check_horizon(timing, NOW_MS, HORIZON_S)


def test_horizon_allows_a_run_at_in_the_past():
    """An absolute time already passed is within the horizon (it runs at once)."""
    check_horizon(Timing("at", NOW_MS - 86_400_000), NOW_MS, HORIZON_S)


def test_horizon_hints_at_milliseconds_sent_as_seconds():
    """An epoch in ms sent as seconds (1795312813366) is refused with a hint about milliseconds."""
    with pytest.raises(ValueError, match="milliseconds"):
        check_horizon(run_at(1_795_312_813_366), NOW_MS, HORIZON_S)


def test_horizon_gives_no_millisecond_hint_for_a_plain_far_date():
    """A date merely too far ahead (a year) is refused without the milliseconds hint."""
    with pytest.raises(ValueError) as caught:
        check_horizon(Timing("at", NOW_MS + 365 * 86_400_000), NOW_MS, HORIZON_S)
    assert "milliseconds" not in str(caught.value)


@pytest.mark.parametrize("text", ["inf", "nan", "-1"])
def test_run_at_refuses_non_finite_or_negative_strings(text):
    """A run_at string that is a number but not a usable time is a ValueError, not an overflow."""
    with pytest.raises(ValueError):
        run_at(text)


def test_run_at_accepts_epoch_seconds_written_as_a_string():
    """'1795312813' is read as epoch seconds, like the number."""
    assert run_at("1795312813") == run_at(1795312813)


# --- parse_duration ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45),
                                               ("2w", 14 * 86400), ("0", 0), ("3600", 3600), (" 7D ", 7 * 86400)])
def test_duration_in_seconds(text, seconds):
    """A duration such as DRIP_HISTORY_RETENTION reads as seconds; a bare number is seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30 days", "-1d", "1.5d", "d", ""])
def test_an_unreadable_duration_is_refused(text):
    """Anything else raises ValueError with an example of what it should look like."""
    with pytest.raises(ValueError, match="30d"):
        parse_duration(text)
