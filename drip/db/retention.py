"""Retention: finished messages' rows (done, dead, cancelled) older than DRIP_HISTORY_RETENTION
leave the history in small batches, oldest first, through the index on finished_at.

Small batches because the recorder writes beside it: a batch holds the locks of its own rows only
(old and finished, rows the recorder no longer touches) and lasts tens of milliseconds, so no
history write waits behind it. Unfinished rows (finished_at NULL) are never candidates, whatever
their age. Ages are measured on PostgreSQL's clock, the one place the rows live.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from drip.core import logs
from drip.core.errors import Unavailable
from drip.db.connect import close_quietly, connect, first_line, session

log = logs.get("drip.retention")

#: Rows one DELETE removes: tens of ms, the most a history write waits behind it. 2,000 took ~200 ms
#: a batch at 10M rows on the shared bench machine, and events then waited up to 3.5 s (bench/history.py).
BATCH_ROWS = 500
#: How often the recorder's leader looks for rows to prune once a sweep has found the last.
EVERY_S = 60.0
#: Between two batches of a sweep: at most 5,000 rows/s, so the deletes' WAL (a full page image of
#: every page they first touch after a checkpoint) does not hold up the recorder's commits. A day of
#: 1,000,000 messages is swept in under 4 minutes.
PAUSE_S = 0.1

_FINISHED = "finished_at < now() - make_interval(secs => %s) AND status IN ('done', 'dead', 'cancelled')"
COUNT = f"SELECT count(*) FROM sequential_queue WHERE {_FINISHED}"
#: By ctid: the batch is read from the index once, then its rows are deleted where they lie (a TID scan,
#: whatever the planner thinks of the batch's size). A row the recorder changed meanwhile (a dead
#: letter replayed: unfinished again) has a new ctid, so PostgreSQL's re-check leaves it out.
DELETE = (f"DELETE FROM sequential_queue WHERE ctid = ANY(ARRAY(SELECT ctid FROM sequential_queue WHERE {_FINISHED}"
          " ORDER BY finished_at LIMIT %s))")


def count_prunable(url: str, older_than_s: int) -> int:
    """How many rows a prune with this age would remove now."""
    with session(url) as conn:
        return conn.execute(COUNT, (older_than_s,)).fetchone()[0]


def prune_batch(conn: psycopg.Connection, older_than_s: int, batch_rows: int = BATCH_ROWS) -> int:
    """Delete one batch (its own transaction on an autocommit connection); how many rows went."""
    return conn.execute(DELETE, (older_than_s, batch_rows)).rowcount


def prune(url: str, older_than_s: int, *, batch_rows: int = BATCH_ROWS,
          progress: Callable[[int], None] | None = None) -> int:
    """Delete every finished row older than `older_than_s` (> 0), batch by batch; returns how many.
    `progress` is told each batch's count."""
    total = 0
    with session(url, autocommit=True) as conn:
        while True:
            n = prune_batch(conn, older_than_s, batch_rows)
            total += n
            if progress is not None:
                progress(n)
            if n < batch_rows:
                return total


class Retention:
    """Automatic retention, run by the recorder's leader between two of its batches once it has caught
    up: while a sweep lasts, one batch of deletes per call at most every `pause_s`, then nothing for
    `every_s`. An event thus never waits behind more than one delete batch. On a connection of its
    own, made on first use."""

    def __init__(self, url: str, retention_s: int, *, every_s: float = EVERY_S, pause_s: float = PAUSE_S,
                 batch_rows: int = BATCH_ROWS) -> None:
        self.url = url
        self.retention_s = retention_s
        self.every_s = every_s
        self.pause_s = pause_s
        self.batch_rows = batch_rows
        #: Sweeps finished so far (one found nothing more to prune).
        self.sweeps = 0
        self._conn: psycopg.Connection | None = None
        self._next_s = 0.0
        self._sweep_rows = 0
        self._sweep_started = 0.0

    def step(self) -> int:
        """Delete one batch when a sweep is due or running; how many rows went (0: none or not due).
        Raises Unavailable when PostgreSQL fails."""
        now = time.monotonic()
        if self.retention_s <= 0 or now < self._next_s:
            return 0
        if self._sweep_rows == 0:
            self._sweep_started = now
        try:
            if self._conn is None:
                self._conn = connect(self.url, autocommit=True)
            n = prune_batch(self._conn, self.retention_s, self.batch_rows)
        except psycopg.Error as exc:
            self.close()
            raise Unavailable(f"cannot prune history: {first_line(exc)}") from None
        self._sweep_rows += n
        self._next_s = now + self.pause_s
        if n < self.batch_rows:
            self.sweeps += 1
            self._next_s = now + self.every_s
            if self._sweep_rows:
                log.info("history_pruned", rows=self._sweep_rows, older_than_s=self.retention_s,
                         duration_ms=round((time.monotonic() - self._sweep_started) * 1000))
            self._sweep_rows = 0
        return n

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
