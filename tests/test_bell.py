"""The line bell in-process: rings carry a queue's name, are kept for busy drains, and overflow into a look."""

from __future__ import annotations

from drip.bell import LOOK, LineBell


def test_rings_are_kept_for_standing_drains_in_order():
    bell = LineBell(store=None)
    bell.stand()
    bell.stand()
    bell.ring("a")
    bell.ring("b")
    assert bell.wait(0) == "a"
    assert bell.wait(0) == "b"
    assert bell.wait(0) is None


def test_more_rings_than_standing_drains_become_one_look_at_the_line():
    """Names dropped for want of drains are not lost: the first drain to wake looks at the whole line."""
    bell = LineBell(store=None)
    bell.stand()
    bell.stand()
    for queue in ("a", "b", "c"):
        bell.ring(queue)
    assert [bell.wait(0), bell.wait(0), bell.wait(0)] == [LOOK, "c", None]


def test_a_ring_for_everyone_asks_each_standing_drain_to_look():
    bell = LineBell(store=None)
    for _ in range(3):
        bell.stand()
    bell.ring("a")
    bell.ring(everyone=True)
    assert [bell.wait(0) for _ in range(4)] == [LOOK, LOOK, LOOK, None]
    bell.sit()
    bell.ring("b")
    bell.ring("c")
    bell.ring("d")
    assert [bell.wait(0) for _ in range(3)] == [LOOK, "d", None]


def test_no_ring_is_kept_without_a_standing_drain():
    bell = LineBell(store=None)
    bell.ring("a")
    assert bell.wait(0) is None
