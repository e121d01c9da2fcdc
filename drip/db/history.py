"""History writes: a batch of rows (drip.work.recorder folds events into them) applied to
the `sequential_queue` table in one transaction, idempotently.

The recorder re-applies a batch after a crash between commit and trim, so every
statement here only moves a row forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from drip.core.errors import Unavailable
from drip.db.connect import close_quietly, connect, first_line


@dataclass
class HistoryRow:
    """One message's history as a batch of events leaves it (see recorder.fold).

    The acceptance fields are set when the batch holds the message's acceptance
    (the row is inserted); the others are the state its later events reached.
    """

    id: str
    status: str
    queue: str | None = None
    location_id: str | None = None
    workflow_id: str | None = None
    contact_id: str | None = None
    payload: str | None = None
    run_at_ms: int | None = None
    enqueued_ms: int | None = None
    attempts: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    last_error: str | None = None
    #: When the successful attempt started (the actual release of a dripped contact).
    released_ms: int | None = None
    #: Replayed from the dead letters: its status and attempts start over from here.
    replayed: bool = False

    @property
    def accepted_here(self) -> bool:
        return self.queue is not None


# How far along a status is: an event re-read after a crash, or applied late, never
# moves a row back (a late 'failed' does not undo 'done', 'queued' does not undo 'failed').
_RANK = "CASE {} WHEN 'scheduled' THEN 0 WHEN 'queued' THEN 1 WHEN 'failed' THEN 2 ELSE 3 END"


def _merge(status: str, attempts: str, started: str, finished: str, last_error: str, released: str,
           replayed: str) -> str:
    """SET clause moving row `t` forward to the given new values (SQL expressions); a replay starts it over."""
    return (
        f"released_at = COALESCE({released}, CASE WHEN {replayed} THEN NULL ELSE t.released_at END),"
        f"status = CASE WHEN {replayed} OR {_RANK.format(status)} >= {_RANK.format('t.status')}"
        f" THEN {status} ELSE t.status END,"
        f" attempts = CASE WHEN {replayed} THEN COALESCE({attempts}, 0) ELSE GREATEST(t.attempts, {attempts}) END,"
        f" started_at = COALESCE(t.started_at, {started}),"
        f" finished_at = CASE WHEN {replayed} THEN {finished} ELSE COALESCE({finished}, t.finished_at) END,"
        f" last_error = COALESCE({last_error}, t.last_error)"
    )


#: The columns of a batch, in the order history_row() lists a row's values.
_BATCH_COLUMNS = ("id", "queue", "location_id", "workflow_id", "contact_id", "payload", "run_at", "enqueued",
                  "status", "attempts", "started", "finished", "last_error", "released", "replayed")

#: Each connection's staging table: a batch is COPYed in (psycopg formats COPY rows in C; binding
#: the batch as arrays of parameters ran in Python and was ~40% of the recorder's CPU), then two
#: statements merge it. ON COMMIT DELETE ROWS empties it with every transaction.
_BATCH_TABLE = (
    "CREATE TEMP TABLE history_batch (id uuid, queue text, location_id text, workflow_id text, contact_id text,"
    " payload text, run_at bigint, enqueued bigint, status text, attempts int, started bigint, finished bigint,"
    " last_error text, released bigint, replayed bool) ON COMMIT DELETE ROWS"
)

#: Messages accepted in this batch (queue set): one statement inserts them all (an upsert, for a
#: batch re-read after a crash).
_INSERT = (
    "INSERT INTO sequential_queue AS t (id, queue, location_id, workflow_id, contact_id, payload, run_at,"
    " enqueued_at, status, attempts, started_at, finished_at, last_error, released_at)"
    " SELECT u.id, u.queue, u.location_id, u.workflow_id, u.contact_id, u.payload::jsonb,"
    " to_timestamp(u.run_at / 1000.0), to_timestamp(u.enqueued / 1000.0), u.status, COALESCE(u.attempts, 0),"
    " to_timestamp(u.started / 1000.0), to_timestamp(u.finished / 1000.0), u.last_error,"
    " to_timestamp(u.released / 1000.0)"
    " FROM history_batch AS u WHERE u.queue IS NOT NULL"
    " ON CONFLICT (id) DO UPDATE SET "
    # A row inserted by this very batch before (re-read after a crash) holds its final values already.
    + _merge("excluded.status", "excluded.attempts", "excluded.started_at", "excluded.finished_at",
             "excluded.last_error", "excluded.released_at", "false")
)
#: Messages accepted in an earlier batch: one statement moves them all on. Each batch row finds its
#: row in the one day (drip.db.partitions) its id names: PostgreSQL prunes the days per row as it
#: joins. (Naming the batch's id range as well, to prune when planning, made the planner expect one
#: row in that range and scan it once per batch row: 0.06x the empty table's rate at 200,000 rows.)
_UPDATE = (
    "UPDATE sequential_queue AS t SET "
    + _merge("u.status", "u.attempts", "to_timestamp(u.started / 1000.0)", "to_timestamp(u.finished / 1000.0)",
             "u.last_error", "to_timestamp(u.released / 1000.0)", "u.replayed")
    + " FROM history_batch AS u WHERE u.queue IS NULL AND t.id = u.id"
)


class HistoryWriter:
    """Writes batches of history rows on one connection of its own (made on first use, with the
    staging table every batch is COPYed into; dropped when PostgreSQL fails)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None

    def write(self, rows: Sequence[HistoryRow]) -> list[tuple[str, str]]:
        """Apply a batch in one transaction: one COPY, then at most two statements. A value PostgreSQL
        refuses must not wedge the recorder: the batch is then written row by row, and a row whose
        payload is refused is stored without it. Returns those (id, PostgreSQL's reason).

        Re-applying a batch (the recorder died after the commit, before removing the events) changes
        nothing: inserts merge into the existing rows and every merge only moves a row forward.
        Raises Unavailable when PostgreSQL is down or refuses the batch for another reason."""
        try:
            try:
                self._apply(rows)
                return []
            except psycopg.DataError:
                return self._one_by_one(rows)
        except psycopg.Error as exc:
            self.close()
            raise Unavailable(f"cannot write history: {first_line(exc)}") from None

    def _one_by_one(self, rows: Sequence[HistoryRow]) -> list[tuple[str, str]]:
        refused = []
        for row in rows:
            try:
                self._apply([row])
            except psycopg.DataError as exc:
                if not row.accepted_here:
                    raise
                refused.append((row.id, first_line(exc)))
                row.payload = None
                self._apply([row])
        return refused

    def _apply(self, rows: Sequence[HistoryRow]) -> None:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY history_batch ({', '.join(_BATCH_COLUMNS)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((r.id, r.queue, r.location_id, r.workflow_id, r.contact_id, r.payload,
                                    r.run_at_ms, r.enqueued_ms, r.status, r.attempts, r.started_ms, r.finished_ms,
                                    r.last_error, r.released_ms, r.replayed))
            if any(r.accepted_here for r in rows):
                cur.execute(_INSERT)
            if not all(r.accepted_here for r in rows):
                cur.execute(_UPDATE)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None:
            conn = connect(self.url)
            conn.execute(_BATCH_TABLE)
            conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
