"""The named queries drip runs on the history, for `drip status`, `drip cancel` and the console.
Each is answered from an index whatever the table's size (tests/db/test_queries.py checks the
plans); each answers Unavailable when PostgreSQL cannot (down, or its schema not there yet)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drip.db.connect import session

#: Columns of a history row as the queries below give it; times become epoch ms, named as in HistoryRow.
_COLUMNS = ("id", "queue", "status", "attempts", "last_error", "location_id", "workflow_id", "contact_id",
            "payload", "enqueued_at", "run_at", "started_at", "released_at", "finished_at")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM sequential_queue"
_TIMES = {"enqueued_at": "enqueued_ms", "run_at": "run_at_ms", "started_at": "started_ms",
          "released_at": "released_ms", "finished_at": "finished_ms"}


def _ms(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


def _row(values: tuple) -> dict[str, Any]:
    row = {}
    for name, value in zip(_COLUMNS, values, strict=True):
        if name in _TIMES:
            row[_TIMES[name]] = _ms(value)
        else:
            row[name] = str(value) if name == "id" else value
    return row


MESSAGE_STATUS = "SELECT status FROM sequential_queue WHERE id = %s"
MESSAGE_TIMELINE = f"{_SELECT} WHERE id = %s"
QUEUE_HISTORY = (f"{_SELECT} WHERE queue = %s AND run_at < COALESCE(to_timestamp(%s / 1000.0), 'infinity')"
                 " ORDER BY run_at DESC LIMIT %s")
WORKFLOW_TIMELINE = (f"{_SELECT} WHERE location_id = %s AND workflow_id = %s"
                     " AND run_at >= now() - make_interval(secs => %s) ORDER BY run_at DESC LIMIT %s")
LATENESS = (
    "SELECT queue, count(*),"
    # date_part gives a double: extract's numeric made the aggregate ~10x slower.
    " round(avg(date_part('epoch', released_at - run_at) * 1000)),"
    " round(max(date_part('epoch', released_at - run_at) * 1000)),"
    " count(*) FILTER (WHERE released_at < run_at)"
    " FROM (SELECT queue, run_at, released_at FROM sequential_queue"
    "       WHERE status = 'done' AND finished_at >= now() - make_interval(secs => %s) AND released_at IS NOT NULL"
    "       ORDER BY finished_at DESC LIMIT %s) AS recent"
    " GROUP BY queue ORDER BY 4 DESC LIMIT %s"
)


def message_status(url: str, message_id: str) -> str | None:
    """A message's status in the history, or None if it has no row."""
    with session(url) as conn:
        row = conn.execute(MESSAGE_STATUS, (message_id,)).fetchone()
    return row[0] if row else None


def message_timeline(url: str, message_id: str) -> dict[str, Any] | None:
    """A message's history row and its timeline: accepted, planned (run_at), started, released,
    finished, in time order (the ones it reached). None if it has no row. By primary key."""
    with session(url) as conn:
        values = conn.execute(MESSAGE_TIMELINE, (message_id,)).fetchone()
    if values is None:
        return None
    row = _row(values)
    steps = [("accepted", row["enqueued_ms"]), ("planned", row["run_at_ms"]), ("started", row["started_ms"]),
             ("released", row["released_ms"]), ("finished", row["finished_ms"])]
    row["timeline"] = sorted(({"what": what, "at_ms": at} for what, at in steps if at is not None),
                             key=lambda step: step["at_ms"])
    return row


def queue_history(url: str, queue: str, limit: int = 50, before_ms: int | None = None) -> list[dict[str, Any]]:
    """A queue's last `limit` rows, newest run_at first; `before_ms` (the last row's run_at_ms) pages on.
    Index (queue, run_at), read backwards."""
    with session(url) as conn:
        cur = conn.execute(QUEUE_HISTORY, (queue, before_ms, limit))
        return [_row(values) for values in cur]


def workflow_timeline(url: str, location_id: str, workflow_id: str, since_s: int = 86400,
                      limit: int = 1000) -> list[dict[str, Any]]:
    """A GoHighLevel workflow's releases planned within the last `since_s` (default a day), newest
    first: planned run_at against actual release. Index (location_id, workflow_id, run_at)."""
    with session(url) as conn:
        cur = conn.execute(WORKFLOW_TIMELINE, (location_id, workflow_id, since_s, limit))
        return [_row(values) for values in cur]


def lateness(url: str, limit: int = 50, since_s: int = 3600, releases: int = 5_000) -> list[dict]:
    """Per workflow (queue), over the last `releases` messages released within the last `since_s`
    (default an hour): releases, average and worst lateness (ms), releases earlier than planned.
    Read backwards on the index on finished_at, at most `releases` rows: bounded however busy."""
    with session(url) as conn:
        cur = conn.execute(LATENESS, (since_s, releases, limit))
        return [{"queue": q, "released": n, "avg_late_ms": int(a), "worst_late_ms": int(w), "early": e}
                for q, n, a, w, e in cur]


def per_minute(url: str, minutes: int = 60) -> list[dict]:
    """Over the last `minutes`: per minute, messages handled and failed (dead), and the worst and average
    lag (handler start − run_at, ms) of the handled ones."""
    with session(url) as conn:
        rows = conn.execute(
            "SELECT date_trunc('minute', finished_at) AS m,"
            " count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status IN ('dead', 'failed')),"
            " coalesce(round(avg(extract(epoch FROM started_at - run_at) * 1000)"
            "   FILTER (WHERE status = 'done')), 0),"
            " coalesce(round(max(extract(epoch FROM started_at - run_at) * 1000)"
            "   FILTER (WHERE status = 'done')), 0)"
            " FROM sequential_queue WHERE finished_at > now() - make_interval(mins => %s)"
            " GROUP BY 1 ORDER BY 1", (minutes,)).fetchall()
    return [{"minute": m, "handled": h, "failed": f, "avg_lag_ms": int(a), "max_lag_ms": int(x)}
            for m, h, f, a, x in rows]


def workflows(url: str, hours: int = 24, limit: int = 100) -> list[dict]:
    """GoHighLevel per location + workflow over the last `hours`: releases, average and worst lateness
    (ms), and each release's planned run_at and actual release (for the drip timeline)."""
    with session(url) as conn:
        rows = conn.execute(
            "SELECT location_id, workflow_id, count(*),"
            " round(avg(extract(epoch FROM released_at - run_at) * 1000)),"
            " round(max(extract(epoch FROM released_at - run_at) * 1000)),"
            " array_agg(ARRAY[extract(epoch FROM run_at) * 1000, extract(epoch FROM released_at) * 1000]"
            "   ORDER BY run_at)"
            " FROM sequential_queue WHERE location_id IS NOT NULL AND released_at > now() - make_interval(hours => %s)"
            " GROUP BY 1, 2 ORDER BY 5 DESC LIMIT %s", (hours, limit)).fetchall()
    return [{"location_id": loc, "workflow_id": wf, "released": n, "avg_late_ms": int(a), "worst_late_ms": int(w),
             "timeline": [(int(p), int(r)) for p, r in points]} for loc, wf, n, a, w, points in rows]
