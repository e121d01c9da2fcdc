"""The console's reads of Redis: totals, and pages of queues whose cursors walk every index once."""

from __future__ import annotations

from drip.core.timing import Timing
from drip.store import browse
from tests.helpers import lease, put


def _all_pages(store, **kw) -> list[str]:
    seen, cursor = [], None
    while True:
        page = browse.page(store.client, store.keys, cursor=cursor, count=7, **kw)
        seen += [row["queue"] for row in page.queues]
        if page.cursor is None:
            return seen
        cursor = page.cursor


def test_index_paging_lists_every_queue_once_whatever_holds_it(store):
    """Queues in line, leased, scheduled and paused, paged 7 at a time: each listed exactly once."""
    for i in range(30):
        put(store, f"ready:{i}")
    for i in range(10):
        put(store, f"later:{i}", timing=Timing("delay", 600_000))
    put(store, "held")
    assert lease(store, "held")
    put(store, "stopped")
    store.queues.pause("stopped")
    put(store, "both")
    put(store, "both", timing=Timing("delay", 600_000))  # in line and scheduled: listed once
    seen = _all_pages(store)
    assert sorted(seen) == sorted({*(f"ready:{i}" for i in range(30)), *(f"later:{i}" for i in range(10)),
                                   "held", "stopped", "both"})
    states = {r["queue"]: r["state"] for r in browse.rows(store.client, store.keys, ["held", "stopped", "later:1"])}
    assert states == {"held": "held", "stopped": "paused", "later:1": "scheduled"}


def test_a_glob_filters_and_sorted_views_merge_the_shards_in_order(store):
    """match= keeps only matching queues; sort=run_at lists by next run_at across shards."""
    for i in range(12):
        put(store, f"location:a:{i}", timing=Timing("delay", 600_000 + i * 1000))
        put(store, f"location:b:{i}")
    assert sorted(_all_pages(store, match="location:a:*")) == sorted(f"location:a:{i}" for i in range(12))
    assert _all_pages(store, sort="run_at") == [f"location:a:{i}" for i in range(12)]
    assert len(_all_pages(store, sort="waiting", match="location:b:*")) == 12


def test_totals_count_queues_by_state_and_scheduled_messages(store):
    """Totals: in line, held, paused, scheduled messages, dead letters."""
    put(store, "a")
    put(store, "b")
    assert lease(store, "b")
    put(store, "c", timing=Timing("delay", 600_000), n=3)
    put(store, "d")
    store.queues.pause("d")
    store.queues.skip("a", "skipped by test")
    t = browse.totals(store.client, store.keys)
    assert (t["in_line"], t["held"], t["paused"], t["scheduled"], t["dead_letters"]) == (0, 1, 1, 3, 1)


def test_a_cursor_no_page_gave_is_invalid_input(store):
    """A forged or stale-format cursor is a 400 naming `cursor`, not a crash."""
    import pytest

    from drip.core.errors import InvalidInput

    for sort, cursor in (("index", "x"), ("index", "0.9.0"), ("waiting", "1.2")):
        with pytest.raises(InvalidInput) as caught:
            browse.page(store.client, store.keys, sort=sort, cursor=cursor)
        assert caught.value.field == "cursor"
