"""History events → PostgreSQL: rows, idempotent re-application, values PostgreSQL refuses, outages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from drip.core.errors import Unavailable
from drip.core.keys import SHARDS
from drip.core.messages import Inbound, new_id
from drip.db import queries
from drip.db.history import HistoryRow, HistoryWriter
from drip.store.stores import Store
from drip.work.recorder import Recorder, fold
from tests.helpers import ack_of, lease, take


@contextmanager
def history_writer(url: str) -> Iterator[HistoryWriter]:
    """A history writer of the test's own (as a recorder that commits a batch, then dies, would have)."""
    writer = HistoryWriter(url)
    try:
        yield writer
    finally:
        writer.close()


def rows(url: str, ids: list[str]) -> dict[str, dict]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT id::text, queue, contact_id, location_id, workflow_id, payload, status, attempts,"
            " started_at IS NOT NULL AS started, finished_at IS NOT NULL AS finished FROM sequential_queue WHERE id::text = ANY(%s)",
            (ids,),
        )
        names = [d.name for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur}


def events_left(store: Store) -> int:
    return sum(store.client.xlen(store.keys.events(s)) for s in range(SHARDS))


def enqueue(store: Store, payload: bytes = b'{"a":1}', **meta) -> str:
    m = Inbound(id=new_id(), queue="q", payload=payload, **meta)
    return store.queues.enqueue([m])[0].id


def handle_all(store: Store) -> None:
    assert lease(store, "q")
    ack = None
    while (step := take(store, "q", ack=ack)).__class__.__name__ == "Taken":
        ack = ack_of(step)


@pytest.fixture
def recorder(store, settings) -> Recorder:
    return Recorder(store, settings.database_url)


def test_queued_then_done_rows(store, recorder, settings):
    """An accepted message gets a queued row with its payload and ids; after handling it is done, attempts 1."""
    mid = enqueue(store, b'{"x":[1,2]}', location_id="L", workflow_id="W", contact_id="C")
    assert recorder.record_once() == 1
    row = rows(settings.database_url, [mid])[mid]
    assert (row["status"], row["payload"], row["location_id"], row["workflow_id"], row["contact_id"]) == (
        "queued", {"x": [1, 2]}, "L", "W", "C")
    handle_all(store)
    recorder.record_once()
    row = rows(settings.database_url, [mid])[mid]
    assert (row["status"], row["attempts"], row["started"], row["finished"]) == ("done", 1, True, True)
    assert events_left(store) == 0


def test_events_reapplied_after_a_crash_give_the_same_rows(store, recorder, settings):
    """A recorder that committed but died before removing its events: the next one re-applies them harmlessly."""
    ids = [enqueue(store) for _ in range(3)]
    handle_all(store)
    events = store.events.read(500)  # the "crashed" recorder's read ...
    with history_writer(settings.database_url) as writer:
        writer.write(fold([fields for _, _, fields in events]))  # ... and commit
    again = Recorder(store, settings.database_url)
    assert again.record_once() == 6
    found = rows(settings.database_url, ids)
    assert len(found) == 3 and {r["status"] for r in found.values()} == {"done"}
    assert events_left(store) == 0


def test_nul_characters_are_stored_as_replacement_characters(store, recorder, settings):
    """jsonb refuses \\u0000; the row keeps the payload with U+FFFD in its place."""
    mid = enqueue(store, b'{"t":"a\\u0000b"}')
    recorder.record_once()
    assert rows(settings.database_url, [mid])[mid]["payload"] == {"t": "a\ufffdb"}


def test_a_payload_postgres_refuses_does_not_wedge_the_recorder(store, recorder, settings):
    """A lone surrogate escape is refused by jsonb: that row is kept without payload, the batch goes on."""
    bad = enqueue(store, b'{"t":"\\ud800"}')
    good = enqueue(store, b'{"t":"fine"}')
    assert recorder.record_once() == 2
    found = rows(settings.database_url, [bad, good])
    assert found[bad]["payload"] is None and found[bad]["status"] == "queued"
    assert found[good]["payload"] == {"t": "fine"}
    assert events_left(store) == 0


def test_events_wait_in_redis_while_postgres_is_unreachable(store, settings):
    """With PostgreSQL unreachable nothing is lost: events stay in Redis until a recorder can write them."""
    mid = enqueue(store)
    down = Recorder(store, "postgresql://127.0.0.1:1/drip")
    with pytest.raises(Unavailable):
        down.record_once()
    assert events_left(store) == 1
    assert Recorder(store, settings.database_url).record_once() == 1
    assert json.dumps(rows(settings.database_url, [mid])[mid]["payload"]) == '{"a": 1}'
    assert events_left(store) == 0


def test_a_late_event_never_moves_a_row_back(store, recorder, settings):
    """Re-applying an earlier 'failed' after 'done' (a batch re-read after a crash) leaves the row done."""
    mid = enqueue(store)
    recorder.record_once()
    done = {b"k": b"done", b"id": mid.encode(), b"q": b"q", b"a": b"2", b"s": b"1000", b"f": b"2000"}
    failed = {b"k": b"failed", b"id": mid.encode(), b"q": b"q", b"a": b"1", b"s": b"1000", b"f": b"1500",
              b"x": b"boom"}
    with history_writer(settings.database_url) as writer:
        writer.write(fold([done]))
        writer.write(fold([failed]))
    row = rows(settings.database_url, [mid])[mid]
    assert (row["status"], row["attempts"]) == ("done", 2)


@pytest.mark.parametrize(("payloads", "kept"), [
    ("full", '{"apiKey":"k","n":1}'), ("redacted", '{"apiKey":"[redacted]","n":1}'), ("none", None)])
def test_a_row_keeps_as_much_of_its_payload_as_history_payloads_says(payloads, kept):
    """DRIP_HISTORY_PAYLOADS: full keeps the payload as sent, redacted replaces credentials, none keeps nothing."""
    accepted = {b"k": b"queued", b"id": new_id().encode(), b"q": b"q", b"p": b'{"apiKey":"k","n":1}', b"e": b"1",
                b"r": b"1", b"m": b"{}"}
    (row,) = fold([accepted], payloads)
    assert row.payload == kept


def test_a_batch_folds_each_message_into_one_row():
    """accepted + promoted + failed + done of one message in one batch become a single row, done, 2 attempts."""
    mid = new_id().encode()
    events = [
        {b"k": b"scheduled", b"id": mid, b"q": b"q", b"p": b"{}", b"e": b"1", b"r": b"5", b"m": b"{}"},
        {b"k": b"promoted", b"id": mid, b"q": b"q"},
        {b"k": b"failed", b"id": mid, b"q": b"q", b"a": b"1", b"s": b"6", b"f": b"7", b"x": b"boom"},
        {b"k": b"done", b"id": mid, b"q": b"q", b"a": b"2", b"s": b"8", b"f": b"9"},
    ]
    (row,) = fold(events)
    assert (row.status, row.attempts, row.started_ms, row.finished_ms, row.last_error) == ("done", 2, 6, 9, "boom")
    assert row.accepted_here and row.run_at_ms == 5


def test_a_replayed_message_starts_its_history_over(store, recorder, settings):
    """dead, then replayed and handled: the row ends done with the new attempt count, not the old one."""
    mid = enqueue(store)
    recorder.record_once()
    ident = mid.encode()
    with history_writer(settings.database_url) as writer:
        writer.write(fold([{b"k": b"dead", b"id": ident, b"q": b"q", b"a": b"5", b"s": b"1", b"f": b"2",
                                      b"x": b"boom"}]))
        writer.write(fold([{b"k": b"replayed", b"id": ident, b"q": b"q"}]))
        assert rows(settings.database_url, [mid])[mid]["status"] == "queued"
        writer.write(fold([{b"k": b"done", b"id": ident, b"q": b"q", b"a": b"1", b"s": b"3", b"f": b"4"}]))
    row = rows(settings.database_url, [mid])[mid]
    assert (row["status"], row["attempts"]) == ("done", 1)


def test_lateness_per_workflow_from_planned_and_actual_release(history_url):
    """queries.lateness gives, per queue, releases, average and worst lateness, and releases earlier than planned
    (in a database of its own: lateness reads the last releases, which other tests' rows would push out)."""
    queue = f"location:L:workflow:{new_id()}"
    rows_in = []
    ago = round(time.time() * 1000) - 600_000  # finished within the last hour, the window drip status shows
    for planned, released in ((ago, ago + 100), (ago + 1000, ago + 1300), (ago + 2000, ago + 1990)):
        rows_in.append(HistoryRow(new_id(), status="done", queue=queue, payload="{}", run_at_ms=planned,
                                     enqueued_ms=planned - 5, attempts=1, started_ms=released,
                                     finished_ms=released + 1, released_ms=released))
    with history_writer(history_url) as writer:
        writer.write(rows_in)
    (found,) = [row for row in queries.lateness(history_url, limit=1000) if row["queue"] == queue]
    assert found == {"queue": queue, "released": 3, "avg_late_ms": 130, "worst_late_ms": 300, "early": 1}


def test_forgetting_recorded_events_keeps_those_that_arrived_since_the_read(store):
    """Trimming up to the last event read drops exactly what was read, not what came in meanwhile."""
    enqueue(store)
    enqueue(store)
    read = store.events.read(500)
    late = enqueue(store)
    store.events.forget({shard: entry_id for shard, entry_id, _ in read})
    (left,) = store.events.read(500)
    assert events_left(store) == 1 and left[2][b"id"].decode() == late
