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
