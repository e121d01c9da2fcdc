"""The history queries: what they answer, and that each is answered from an index (EXPLAIN on a
history of 50,000 rows over 60 days, a partition a day, analyzed, so the planner's choice is the one
a large table gets)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from drip.core.messages import new_id
from drip.db import partitions, queries, retention
from drip.db.history import HistoryRow, HistoryWriter
from tests.helpers import id_at

ROWS = 50_000
#: A partition this small (80 KB) may be read whole: an ordinary day of the load has ~20 pages, the
#: large one ~500.
SMALL_PAGES = 10
#: Noon (UTC) of the day 45 days back: the middle of the large old day, whatever the hour now.
OLD_NOON_MS = (int(time.time() * 1000) // partitions.DAY_MS - 45) * partitions.DAY_MS + partitions.DAY_MS // 2
#: That day's partition, the large old one: rows retention batches would remove.
OLD_PARTITION = partitions.day_name(OLD_NOON_MS)

#: Rows over a span of days ending at a given time (50,000 over the 60 days up to now, then 25,000
#: within a quarter hour at noon 45 days ago: one old day as large as production's, where reading a
#: batch's rows by ctid beats reading the day, and where a lookup by id must use the index whatever
#: the hour the test runs at; today's partition may hold a handful of rows): ids UUIDv7 of their
#: time (so each lands in its day, as drip's do), 500 queues, GoHighLevel ids on a fifth of them, 9 in 10 finished (most done and released), the rest
#: queued or scheduled.
_LOAD = """
INSERT INTO sequential_queue (id, queue, location_id, workflow_id, contact_id, payload, status, run_at,
                              attempts, enqueued_at, started_at, released_at, finished_at)
SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7' || substr(md5(n::text), 1, 3) || '8'
        || substr(md5(n::text), 4, 15))::uuid, 'q' || (mod(n, 500)),
       CASE WHEN mod(n, 5) = 0 THEN 'L' || (mod(n, 50)) END, CASE WHEN mod(n, 5) = 0 THEN 'W' || (mod(n, 50)) END,
       CASE WHEN mod(n, 5) = 0 THEN 'C' || n END, '{"text": "hello"}',
       CASE WHEN mod(n, 10) = 0 THEN 'queued' WHEN mod(n, 10) = 1 THEN 'dead' ELSE 'done' END,
       at, 1, at, at + interval '1 s',
       CASE WHEN mod(n, 10) > 1 THEN at + interval '1 s' END,
       CASE WHEN mod(n, 10) > 0 THEN at + interval '2 s' END
FROM (SELECT n, %s::timestamptz - (n * %s * interval '1 day' / %s) AS at
      FROM generate_series(1, %s) AS n) AS s
"""


@pytest.fixture(scope="module")
def loaded(history_url: str) -> str:
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("TRUNCATE sequential_queue")
        partitions.ensure(conn, days_back=61)
        conn.execute(_LOAD, (datetime.now(UTC), 60, ROWS, ROWS))
        conn.execute(_LOAD, (datetime.fromtimestamp(OLD_NOON_MS / 1000, UTC), 0.01, ROWS // 2, ROWS // 2))
        conn.execute("VACUUM ANALYZE sequential_queue")
    return history_url


def scans(plan: dict) -> list[tuple[str, str]]:
    """Every scan node of a plan (JSON format) on the history's partitions, as (node type, relation)."""
    relation = plan.get("Relation Name", "")
    found = [(plan["Node Type"], relation)] if relation.startswith("sequential_queue") else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


@pytest.mark.parametrize(("name", "statement", "params"), [
    ("message status", queries.MESSAGE_STATUS, (id_at(OLD_NOON_MS),)),
    ("message timeline", queries.MESSAGE_TIMELINE, (id_at(OLD_NOON_MS),)),
    ("queue history", queries.QUEUE_HISTORY, ("q7", None, 50)),
    ("queue history, next page", queries.QUEUE_HISTORY, ("q7", round(time.time() * 1000) - 86_400_000, 50)),
    ("workflow timeline", queries.WORKFLOW_TIMELINE, ("L5", "W5", 86400, 1000)),
    ("lateness", queries.LATENESS, (3600, 10_000, 50)),
    ("prune count", retention.COUNT, (30 * 86400,)),
    ("prune batch", retention.DELETE, (30 * 86400, retention.BATCH_ROWS)),
])
def test_every_history_query_is_answered_from_an_index(loaded, name, statement, params):
    """EXPLAIN of each history query drip runs shows index scans of the partitions holding rows: a Seq
    Scan only of a partition of a few pages (the days ahead, the default, the half day at the edge
    of the load), where reading it whole is cheaper than an index and stays so."""
    with psycopg.connect(loaded) as conn:
        if statement == retention.COUNT:
            conn.execute(retention.COUNT_SETTING)  # as count_prunable runs it
        text = sql.SQL(statement).format(part=sql.Identifier(OLD_PARTITION)).as_string(conn)
        (plan,), = conn.execute("EXPLAIN (FORMAT JSON) " + text, params).fetchone()
        conn.rollback()
        found = scans(plan["Plan"])
        small = {name for name, in conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'sequential_queue%%' AND relpages < %s", (SMALL_PAGES,))}
    assert found and any(kind != "Seq Scan" for kind, _ in found), f"{name}: {json.dumps(plan, indent=1)}"
    assert all(kind != "Seq Scan" or relation in small for kind, relation in found), \
        f"{name}: {json.dumps(plan, indent=1)}"


def test_queue_history_pages_newest_first_and_a_timeline_orders_its_steps(history_url):
    """queue_history gives a queue's newest rows first and pages with before_ms; message_timeline orders
    accepted, planned, started, released, finished; workflow_timeline names a workflow's releases."""
    queue, base = f"location:L:workflow:{new_id()}", round(time.time() * 1000) - 600_000
    rows = [HistoryRow(new_id(), status="done", queue=queue, location_id="Lx", workflow_id=queue, payload="{}",
                       run_at_ms=base + i * 1000, enqueued_ms=base - 5000, attempts=1, started_ms=base + i * 1000 + 7,
                       finished_ms=base + i * 1000 + 9, released_ms=base + i * 1000 + 7) for i in range(5)]
    writer = HistoryWriter(history_url)
    try:
        writer.write(rows)
    finally:
        writer.close()
    first = queries.queue_history(history_url, queue, limit=3)
    assert [r["id"] for r in first] == [r.id for r in reversed(rows)][:3]
    rest = queries.queue_history(history_url, queue, limit=3, before_ms=first[-1]["run_at_ms"])
    assert [r["id"] for r in rest] == [rows[1].id, rows[0].id]
    timeline = queries.message_timeline(history_url, rows[2].id)
    assert [step["what"] for step in timeline["timeline"]] == ["accepted", "planned", "started", "released",
                                                               "finished"]
    assert timeline["status"] == "done" and timeline["released_ms"] - timeline["run_at_ms"] == 7
    assert queries.message_timeline(history_url, new_id()) is None
    assert {r["id"] for r in queries.workflow_timeline(history_url, "Lx", queue)} == {r.id for r in rows}
