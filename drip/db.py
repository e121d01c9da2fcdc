"""The only PostgreSQL I/O: connecting, migrations (`drip db upgrade`) and history writes.

SQL stays SQL: migrations are the files of db/ (shipped inside the wheel as
drip/migrations), applied in name order under an advisory lock, each recorded
with its checksum so an edited migration is noticed instead of silently skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from drip.errors import ConfigError, DripError, Unavailable

#: Arbitrary constant key of the advisory lock that serialises `drip db upgrade`.
_UPGRADE_LOCK = 0x64726970  # "drip"


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """db/*.sql in name order: from the installed package, else from the checkout (editable installs)."""
    packaged = resources.files("drip").joinpath("migrations")
    if packaged.is_dir():
        files = [(f.name, f.read_text()) for f in packaged.iterdir() if f.name.endswith(".sql")]
    else:
        folder = Path(__file__).resolve().parent.parent / "db"
        if not folder.is_dir():
            raise ConfigError(f"no migrations found (looked in the package and in {folder})")
        files = [(f.name, f.read_text()) for f in folder.glob("*.sql")]
    return [Migration(name, text) for name, text in sorted(files)]


def connect(url: str, *, autocommit: bool = False, timeout_s: int = 5) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=timeout_s)
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot connect to PostgreSQL ({describe(url)}): {first_line(exc)}") from None


def describe(url: str) -> str:
    """host/port/dbname of a connection URL, without its password (safe to log)."""
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it is missing; True when it was created."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise Unavailable(f"cannot connect to PostgreSQL ({describe(url)}): {first_line(exc)}") from None
    name = conninfo_to_dict(url).get("dbname")
    if not name:
        raise ConfigError("DRIP_DATABASE_URL names no database")
    with connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            # Another process created it at the same moment (the catalog's unique
            # index reports the race when both passed the existence check).
            return False
    return True


def drop_database(url: str) -> None:
    """Drop the database named in `url` (tests clean up with it)."""
    name = conninfo_to_dict(url)["dbname"]
    with connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def upgrade(url: str) -> list[str]:
    """Create the database if needed and apply the migrations it lacks; returns the names applied.

    Safe to run twice or from several processes at once: an advisory lock
    serialises them and each migration commits together with its record.
    """
    ensure_database(url)
    applied_now = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_UPGRADE_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS drip_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = dict(conn.execute("SELECT name, checksum FROM drip_migrations").fetchall())
            for migration in migrations():
                if migration.name in done:
                    if done[migration.name] != migration.checksum:
                        raise DripError(
                            f"migration {migration.name} was edited after it was applied; "
                            "add a new migration instead of changing a landed one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO drip_migrations (name, checksum) VALUES (%s, %s)",
                        (migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_UPGRADE_LOCK,))
    return applied_now


# --- history ------------------------------------------------------------------


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
#: Messages accepted in an earlier batch: one statement moves them all on.
_UPDATE = (
    "UPDATE sequential_queue AS t SET "
    + _merge("u.status", "u.attempts", "to_timestamp(u.started / 1000.0)", "to_timestamp(u.finished / 1000.0)",
             "u.last_error", "to_timestamp(u.released / 1000.0)", "u.replayed")
    + " FROM history_batch AS u WHERE u.queue IS NULL AND t.id = u.id"
)


def message_status(url: str, message_id: str) -> str | None:
    """A message's status in the history, or None if it has no row."""
    with connect(url) as conn:
        row = conn.execute("SELECT status FROM sequential_queue WHERE id = %s", (message_id,)).fetchone()
    return row[0] if row else None


def lateness(url: str, limit: int = 50) -> list[dict]:
    """Per workflow (queue): releases, average and worst lateness (ms), releases earlier than planned."""
    with connect(url) as conn:
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


def connect_history(url: str) -> psycopg.Connection:
    """A connection for write_history: connect() plus its staging table."""
    conn = connect(url)
    conn.execute(_BATCH_TABLE)
    conn.commit()
    return conn


def write_history(conn: psycopg.Connection, rows: Sequence[HistoryRow]) -> None:
    """Apply a batch of history rows in one transaction: one COPY, then at most two statements.
    `conn` comes from connect_history.

    Re-applying a batch (the recorder died after the commit, before removing the
    events) changes nothing: inserts merge into the existing rows and every merge
    only moves a row forward.
    """
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(f"COPY history_batch ({', '.join(_BATCH_COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row((r.id, r.queue, r.location_id, r.workflow_id, r.contact_id, r.payload, r.run_at_ms,
                                r.enqueued_ms, r.status, r.attempts, r.started_ms, r.finished_ms, r.last_error,
                                r.released_ms, r.replayed))
        if any(r.accepted_here for r in rows):
            cur.execute(_INSERT)
        if not all(r.accepted_here for r in rows):
            cur.execute(_UPDATE)


