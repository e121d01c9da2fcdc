"""Retention: finished messages' rows (done, dead, cancelled) older than DRIP_HISTORY_RETENTION
leave the history. A sweep first drops each day of the history (drip.db.partitions) accepted that
long ago: one short lock, however many rows; the few rows of it to keep (a message unfinished, or
finished recently) move into the default partition. What remains (the table db/0004 kept, the
default partition, a day with too many rows to keep) loses its old finished rows in small
batches, oldest first, through the index on finished_at.

Small batches because the recorder writes beside it: a batch holds the locks of its own rows only
(old and finished, rows the recorder no longer touches) and lasts tens of milliseconds, so no
history write waits behind it. Unfinished rows (finished_at NULL) are never candidates, whatever
their age. Ages are measured on PostgreSQL's clock, the one place the rows live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg import sql

from drip.core import logs
from drip.core.errors import Unavailable
from drip.db import partitions
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
#: Counting reads the finished index (an index-only scan, ~22 bytes a row), never the rows (~700):
#: on an old day every row matches, and the planner would then read the day whole.
COUNT_SETTING = "SET LOCAL enable_seqscan = off"
#: One partition's batch (a statement of its own: a ctid names a row within one table only), by
#: ctid: the batch is read from the index once, then its rows are deleted where they lie (a TID scan,
#: whatever the planner thinks of the batch's size). A row the recorder changed meanwhile (a dead
#: letter replayed: unfinished again) has a new ctid, so PostgreSQL's re-check leaves it out.
DELETE = ("DELETE FROM {part} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {part} WHERE " + _FINISHED
          + " ORDER BY finished_at LIMIT %s))")


def count_prunable(url: str, older_than_s: int) -> int:
    """How many rows a prune with this age would remove now."""
    with session(url) as conn:
        conn.execute(COUNT_SETTING)
        return conn.execute(COUNT, (older_than_s,)).fetchone()[0]


def prune_batch(conn: psycopg.Connection, partition: str, older_than_s: int, batch_rows: int = BATCH_ROWS) -> int:
    """Delete one batch from one partition (its own transaction on an autocommit connection); how many went."""
    statement = sql.SQL(DELETE).format(part=sql.Identifier(partition))
    return conn.execute(statement, (older_than_s, batch_rows)).rowcount


def sweep(conn: psycopg.Connection, older_than_s: int, batch_rows: int = BATCH_ROWS) -> Iterator[int]:
    """One sweep, a step at a time (each yields how many rows it removed, never 0): the days ahead
    created, whole days dropped, then batches in each partition until one comes back short. On an
    autocommit connection."""
    partitions.ensure(conn)
    for partition in partitions.droppable(conn, older_than_s):
        dropped = partitions.drop_day(conn, partition, older_than_s)
        if dropped:
            yield dropped
    for partition in partitions.listed(conn):
        try:
            while (n := prune_batch(conn, partition.name, older_than_s, batch_rows)) > 0:
                yield n
                if n < batch_rows:
                    break
        except psycopg.errors.UndefinedTable:
            continue  # dropped meanwhile by another prune


def prune(url: str, older_than_s: int, *, batch_rows: int = BATCH_ROWS,
          progress: Callable[[int], None] | None = None) -> int:
    """Remove every finished row older than `older_than_s` (> 0); returns how many. `progress` is told
    each step's count."""
    total = 0
    with session(url, autocommit=True) as conn:
        for n in sweep(conn, older_than_s, batch_rows):
            total += n
            if progress is not None:
                progress(n)
    return total


class Retention:
    """Automatic retention, run by the recorder's leader between two of its batches once it has caught
    up: while a sweep lasts, one step of it (a day dropped or a batch deleted) per call at most every
    `pause_s`, then nothing for `every_s`. An event thus never waits behind more than one step. On a
    connection of its own, made on first use."""

    def __init__(self, url: str, retention_s: int, *, every_s: float = EVERY_S, pause_s: float = PAUSE_S,
                 batch_rows: int = BATCH_ROWS) -> None:
        self.url = url
        self.retention_s = retention_s
        self.every_s = every_s
        self.pause_s = pause_s
        self.batch_rows = batch_rows
        #: Sweeps finished so far.
        self.sweeps = 0
        self._conn: psycopg.Connection | None = None
        self._sweep: Iterator[int] | None = None
        self._next_s = 0.0
        self._sweep_rows = 0
        self._sweep_started = 0.0

    def step(self) -> int:
        """One step of the sweep when one is due or running; how many rows went (0: none, not due, or
        the sweep just ended). Raises Unavailable when PostgreSQL fails."""
        now = time.monotonic()
        if self.retention_s <= 0 or now < self._next_s:
            return 0
        try:
            if self._conn is None:
                self._conn = connect(self.url, autocommit=True)
            if self._sweep is None:
                self._sweep, self._sweep_rows, self._sweep_started = (
                    sweep(self._conn, self.retention_s, self.batch_rows), 0, now)
            n = next(self._sweep, 0)
        except psycopg.Error as exc:
            self.close()
            raise Unavailable(f"cannot prune history: {first_line(exc)}") from None
        self._sweep_rows += n
        self._next_s = now + self.pause_s
        if n == 0:
            self.sweeps += 1
            self._next_s = now + self.every_s
            self._sweep = None
            if self._sweep_rows:
                log.info("history_pruned", rows=self._sweep_rows, older_than_s=self.retention_s,
                         duration_ms=round((time.monotonic() - self._sweep_started) * 1000))
        return n

    def close(self) -> None:
        self._sweep = None
        close_quietly(self._conn)
        self._conn = None
