"""The named queries drip runs on the history, for `drip status`, `drip cancel` and the console.
Each answers Unavailable when PostgreSQL cannot (down, or its schema not there yet)."""

from __future__ import annotations

from drip.db.connect import session


def message_status(url: str, message_id: str) -> str | None:
    """A message's status in the history, or None if it has no row."""
    with session(url) as conn:
        row = conn.execute("SELECT status FROM sequential_queue WHERE id = %s", (message_id,)).fetchone()
    return row[0] if row else None


def lateness(url: str, limit: int = 50) -> list[dict]:
    """Per workflow (queue): releases, average and worst lateness (ms), releases earlier than planned."""
    with session(url) as conn:
        cur = conn.execute(
            "SELECT queue, count(*),"
            " round(avg(extract(epoch FROM released_at - run_at) * 1000)),"
            " round(max(extract(epoch FROM released_at - run_at) * 1000)),"
            " count(*) FILTER (WHERE released_at < run_at)"
            " FROM sequential_queue WHERE released_at IS NOT NULL"
            " GROUP BY queue ORDER BY 4 DESC LIMIT %s",
            (limit,),
        )
        return [{"queue": q, "released": n, "avg_late_ms": int(a), "worst_late_ms": int(w), "early": e}
                for q, n, a, w, e in cur]


_ROW = ("id", "queue", "status", "run_at", "attempts", "last_error", "enqueued_at", "started_at", "finished_at",
        "released_at", "payload")
_ROW_SQL = ("SELECT id::text, queue, status, run_at, attempts, last_error, enqueued_at, started_at, finished_at,"
            " released_at, payload::text FROM sequential_queue")


def message(url: str, message_id: str) -> dict | None:
    """A message's history row (times as datetimes, payload as JSON text), or None."""
    with session(url) as conn:
        row = conn.execute(_ROW_SQL + " WHERE id = %s", (message_id,)).fetchone()
    return dict(zip(_ROW, row, strict=True)) if row else None


def queue_history(url: str, queue: str, limit: int = 50) -> list[dict]:
    """A queue's last `limit` history rows, newest run_at first."""
    with session(url) as conn:
        rows = conn.execute(_ROW_SQL + " WHERE queue = %s ORDER BY run_at DESC LIMIT %s", (queue, limit)).fetchall()
    return [dict(zip(_ROW, row, strict=True)) for row in rows]


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
