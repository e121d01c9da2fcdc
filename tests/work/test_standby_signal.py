"""The standby signal in-process: signals carry a queue's name, are kept for busy drains, and overflow into a look."""

from __future__ import annotations

from drip.work.standby_signal import LOOK, StandbySignal


def test_signals_are_kept_for_drains_standing_by_in_order():
    standby = StandbySignal(workers=None)
    standby.stand_by()
    standby.stand_by()
    standby.signal("a")
    standby.signal("b")
    assert standby.wait(0) == "a"
    assert standby.wait(0) == "b"
    assert standby.wait(0) is None


def test_more_signals_than_drains_standing_by_become_one_look_at_the_line():
    """Names dropped for want of drains are not lost: the first drain to wake looks at the whole line."""
    standby = StandbySignal(workers=None)
    standby.stand_by()
    standby.stand_by()
    for queue in ("a", "b", "c"):
        standby.signal(queue)
    assert [standby.wait(0), standby.wait(0), standby.wait(0)] == [LOOK, "c", None]


def test_a_signal_for_everyone_asks_each_drain_standing_by_to_look():
    standby = StandbySignal(workers=None)
    for _ in range(3):
        standby.stand_by()
    standby.signal("a")
    standby.signal(everyone=True)
    assert [standby.wait(0) for _ in range(4)] == [LOOK, LOOK, LOOK, None]
    standby.stop_standing()
    standby.signal("b")
    standby.signal("c")
    standby.signal("d")
    assert [standby.wait(0) for _ in range(3)] == [LOOK, "d", None]


def test_no_signal_is_kept_without_a_drain_standing_by():
    standby = StandbySignal(workers=None)
    standby.signal("a")
    assert standby.wait(0) is None
