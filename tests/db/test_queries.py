"""The history queries: what they answer, and that each is answered from an index (EXPLAIN on a
table of 50,000 rows, analyzed, so the planner's choice is the one a large table gets)."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from drip.core.messages import new_id
from drip.db import queries, retention
from drip.db.history import HistoryRow, HistoryWriter

ROWS = 50_000

#: 50,000 rows over 60 days: 500 queues, GoHighLevel ids on a fifth of them, 9 in 10 finished
#: (most done and released), the rest queued or scheduled.
_LOAD = """
INSERT INTO sequential_queue (id, queue, location_id, workflow_id, contact_id, payload, status, run_at,
                              attempts, enqueued_at, started_at, released_at, finished_at)
SELECT gen_random_uuid(), 'q' || (mod(n, 500)),
       CASE WHEN mod(n, 5) = 0 THEN 'L' || (mod(n, 50)) END, CASE WHEN mod(n, 5) = 0 THEN 'W' || (mod(n, 50)) END,
       CASE WHEN mod(n, 5) = 0 THEN 'C' || n END, '{"text": "hello"}',
       CASE WHEN mod(n, 10) = 0 THEN 'queued' WHEN mod(n, 10) = 1 THEN 'dead' ELSE 'done' END,
       at, 1, at, at + interval '1 s',
       CASE WHEN mod(n, 10) > 1 THEN at + interval '1 s' END,
       CASE WHEN mod(n, 10) > 0 THEN at + interval '2 s' END
FROM (SELECT n, now() - (n * interval '60 days' / %s) AS at FROM generate_series(1, %s) AS n) AS s
"""


@pytest.fixture(scope="module")
def loaded(history_url: str) -> str:
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("TRUNCATE sequential_queue")
        conn.execute(_LOAD, (ROWS, ROWS))
        conn.execute("VACUUM ANALYZE sequential_queue")
    return history_url


def scans(plan: dict) -> list[str]:
    """Every scan node of a plan (JSON format) on sequential_queue, as '<node type>'."""
    found = [plan["Node Type"]] if plan.get("Relation Name") == "sequential_queue" else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


@pytest.mark.parametrize(("name", "statement", "params"), [
    ("message status", queries.MESSAGE_STATUS, (new_id(),)),
    ("message timeline", queries.MESSAGE_TIMELINE, (new_id(),)),
    ("queue history", queries.QUEUE_HISTORY, ("q7", None, 50)),
    ("queue history, next page", queries.QUEUE_HISTORY, ("q7", round(time.time() * 1000) - 86_400_000, 50)),
    ("workflow timeline", queries.WORKFLOW_TIMELINE, ("L5", "W5", 86400, 1000)),
    ("lateness", queries.LATENESS, (3600, 10_000, 50)),
    ("prune count", retention.COUNT, (30 * 86400,)),
    ("prune batch", retention.DELETE, (30 * 86400, retention.BATCH_ROWS)),
])
def test_every_history_query_is_answered_from_an_index(loaded, name, statement, params):
    """EXPLAIN of each history query drip runs shows index scans only on sequential_queue, never a Seq Scan."""
    with psycopg.connect(loaded) as conn:
        (plan,), = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchone()
        conn.rollback()
    found = scans(plan["Plan"])
    assert found and "Seq Scan" not in found, f"{name}: {json.dumps(plan, indent=1)}"


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
