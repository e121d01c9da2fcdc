"""Downstream budgets against real Redis: a sliding log shared by every caller, read from rate texts."""

from __future__ import annotations

import pytest

from drip.store.budgets import Budget


@pytest.mark.parametrize(("text", "budget"), [
    ("80/s", Budget(80, 1000)),
    ("100/s:300", Budget(300, 3000)),
    ("10/s:100", Budget(100, 10_000)),
    ("6000/m", Budget(100, 1000)),
])
def test_a_rate_is_a_number_of_calls_in_a_window(text, budget):
    """'R/unit:B' allows at most B calls in any window of B/R: the burst, and the rate over that window."""
    assert Budget.parse(text) == budget


def test_a_budget_lets_its_limit_through_then_says_how_long_to_wait(store):
    """Three calls in a minute: the fourth waits until the first leaves the window; another budget is apart."""
    minute = Budget(3, 60_000)
    assert [store.budgets.take("b", minute)[0] for _ in range(3)] == [0, 0, 0]
    wait_ms, entry = store.budgets.take("b", minute)
    assert 59_000 < wait_ms <= 60_000 and entry == 0
    assert store.budgets.take("other", minute)[0] == 0


def test_a_daily_cap_holds_even_when_the_window_allows(store):
    """With a daily cap of 2 the third call of the day waits for tomorrow, whatever the window says."""
    capped = Budget(100, 1000, daily=2)
    assert [store.budgets.take("d", capped)[0] for _ in range(2)] == [0, 0]
    assert store.budgets.take("d", capped)[0] > 0
