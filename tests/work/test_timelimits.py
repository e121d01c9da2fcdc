"""Handler time limits in-process: Python code is interrupted at its limit; a handler blocked in C is
given up on after the grace, its attempt booked by the callback."""

from __future__ import annotations

import threading

import pytest

from drip.work.timelimits import HandlerTimedOut, TimeLimits, grace_s


@pytest.fixture
def limits():
    stop = threading.Event()
    limits = TimeLimits()
    limits.watch(stop)
    yield limits
    stop.set()


def test_a_handler_running_python_is_interrupted_at_its_limit(limits):
    """A loop in Python code gets HandlerTimedOut raised in its own thread; nothing is given up on."""
    given_up = []

    def spin(_message) -> None:
        while True:
            pass

    with pytest.raises(HandlerTimedOut):
        limits.call(spin, None, 0.1, lambda: given_up.append(True))
    assert given_up == [] and limits.stuck() == 0


def test_a_handler_blocked_in_c_is_given_up_on_after_the_grace(limits):
    """A handler blocked where no exception can reach it: after limit + grace the callback books it, and
    when it finally returns the caller learns it was given up on."""
    given_up = threading.Event()
    release = threading.Event()
    outcome = []

    def blocked(_message) -> None:
        release.wait(30)  # a lock wait in C: the interrupt waits for it to return

    thread = threading.Thread(target=lambda: outcome.append(limits.call(blocked, None, 0.1, given_up.set)))
    thread.start()
    assert given_up.wait(10), "the stuck handler was given up on"
    assert limits.stuck() == 1
    release.set()
    thread.join(10)
    assert outcome == [True]


def test_a_handler_that_finishes_in_time_is_left_alone(limits):
    """Within its limit a handler runs to its end; no interrupt fires later in its thread."""
    assert limits.call(lambda _m: None, None, 0.2, lambda: None) is False
    threading.Event().wait(0.3)  # past the limit the handler would have had: nothing may be raised now


def test_the_grace_grows_with_the_limit_within_bounds():
    """One second at least, thirty at most, else as long as the limit itself."""
    assert (grace_s(0.1), grace_s(5), grace_s(300)) == (1.0, 5.0, 30.0)
