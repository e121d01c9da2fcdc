"""The history's partitions (db/0004): one per UTC day of acceptance, as a range of ids.

drip's ids are UUIDv7, whose first 48 bits are the acceptance time in milliseconds, so the ids of
a day are one range and the id stays the only key: a message is found, updated and merged by id
in one partition. The recorder writes into today's, whose indexes stay small however long the
history grows (at 10M rows in one table they no longer fit in memory and every insert paid for
it), and retention drops a day accepted long enough ago (its few rows still to keep moved into the
default partition first), where row-by-row deletes made the recorder's writes wait. Days are created ahead (`drip db upgrade`, then the recorder's leader
every sweep); an id no day holds lands in the default partition, so no write ever fails for the
want of a partition, and a day created later takes the default's rows of its range with it.

Times are PostgreSQL's clock, the one place the rows live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from drip.core import logs

log = logs.get("drip.partitions")

DAY_MS = 86_400_000
#: Days created ahead of today: the service writes on through a recorder that is down this long.
DAYS_AHEAD = 3
#: The most a partition change waits for the recorder's transactions (and makes them wait): a
#: change that cannot have its lock this soon is tried again at the next sweep.
LOCK_TIMEOUT = "200ms"
TABLE = "sequential_queue"
DEFAULT = "sequential_queue_default"
#: The rows of a partition retention must keep: a message not finished, or finished too recently.
#: Each half is read from an index (unfinished rows, finished_at).
_KEEP = ("SELECT * FROM {part} WHERE status NOT IN ('done', 'dead', 'cancelled') UNION ALL"
         " SELECT * FROM {part} WHERE status IN ('done', 'dead', 'cancelled')"
         " AND finished_at >= now() - make_interval(secs => %s)")
#: A day holding more rows to keep than this loses its old rows by batches instead (moving them all
#: under the history's lock would make the recorder wait).
MOVE_LIMIT = 10_000
_BOUND = re.compile(r"'([0-9a-f-]{36})'")


@dataclass(frozen=True)
class Partition:
    name: str
    #: Milliseconds of its first id, or None: from the lowest id (the table kept by db/0004).
    lower_ms: int | None
    #: Milliseconds of the first id after it, or None: the default partition.
    upper_ms: int | None

    @property
    def is_default(self) -> bool:
        return self.upper_ms is None


def first_id(ms: int) -> str:
    """The lowest UUIDv7 of a millisecond: a partition's bound."""
    h = f"{ms:012x}" + "0" * 20
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_ms(bound: str) -> int:
    return int(bound.replace("-", "")[:12], 16)


def day_name(day_ms: int) -> str:
    return f"{TABLE}_{datetime.fromtimestamp(day_ms / 1000, tz=UTC):%Y%m%d}"


def listed(conn: psycopg.Connection) -> list[Partition]:
    """The history's partitions, lowest ids first, the default last."""
    found = []
    for name, bound in conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass", (TABLE,)):
        ids = _BOUND.findall(bound)
        if bound == "DEFAULT":
            found.append(Partition(name, None, None))
        elif "MINVALUE" in bound:
            found.append(Partition(name, None, id_ms(ids[0])))
        else:
            found.append(Partition(name, id_ms(ids[0]), id_ms(ids[1])))
    return sorted(found, key=lambda p: (p.is_default, p.lower_ms or 0))


def now_ms(conn: psycopg.Connection) -> int:
    """PostgreSQL's clock, in milliseconds."""
    return conn.execute("SELECT (extract(epoch FROM now()) * 1000)::bigint").fetchone()[0]


def ensure(conn: psycopg.Connection, *, days_back: int = 0, days_ahead: int = DAYS_AHEAD) -> list[str]:
    """Create each missing day from `days_back` days ago to `days_ahead` days ahead; the names made.
    A day some partition already covers in part (the table db/0004 kept) is left to it. On an
    autocommit connection: each day is its own transaction."""
    now = now_ms(conn)
    today = now - now % DAY_MS
    made = []
    for day in range(today - days_back * DAY_MS, today + (days_ahead + 1) * DAY_MS, DAY_MS):
        ranges = [p for p in listed(conn) if not p.is_default]
        if any((p.lower_ms or 0) < day + DAY_MS and day < p.upper_ms for p in ranges):
            continue
        try:
            _create(conn, day)
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DuplicateTable) as exc:
            # Busy (the next sweep tries again), or made meanwhile by another process.
            log.info("history_partition_not_created", partition=day_name(day), reason=type(exc).__name__)
            continue
        made.append(day_name(day))
    return made


def _create(conn: psycopg.Connection, day: int) -> None:
    """One day: a table like the history, the default partition's rows of its range moved in, attached
    (a lock of the whole history only of the kind that lets every write go on)."""
    part, lower, upper = sql.Identifier(day_name(day)), first_id(day), first_id(day + DAY_MS)
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            part, sql.Identifier(TABLE)))
        moved = conn.execute(sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE id >= %s AND id < %s RETURNING *) INSERT INTO {} SELECT * FROM moved"
        ).format(sql.Identifier(DEFAULT), part), (lower, upper)).rowcount
        conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(TABLE), part, sql.Literal(lower), sql.Literal(upper)))
    log.info("history_partition_created", partition=day_name(day), moved_rows=moved)


def droppable(conn: psycopg.Connection, older_than_s: int) -> list[Partition]:
    """The partitions whose every id was accepted over `older_than_s` ago: the only ones retention
    drops whole (`drop_day`)."""
    cutoff = now_ms(conn) - older_than_s * 1000
    return [p for p in listed(conn) if not p.is_default and p.upper_ms <= cutoff]


def drop_day(conn: psycopg.Connection, partition: Partition, older_than_s: int) -> int | None:
    """Drop a partition of old ids, its rows retention must keep (an unfinished message, one finished
    recently) moved first into the default partition, which holds any id no day covers; how many rows
    went, or None when it holds more than MOVE_LIMIT to keep or its lock was not had within
    LOCK_TIMEOUT. On an autocommit connection.

    The rows are counted before the lock (a million take ~0.1 s to count, and no write waits for
    that); the rows to keep are read, the day dropped and they written back all under the history's
    lock, so no row arrives or changes between."""
    part = sql.Identifier(partition.name)
    keep = sql.SQL(_KEEP).format(part=part)
    if conn.execute(sql.SQL("SELECT count(*) FROM ({} LIMIT %s) AS k").format(keep),
                    (older_than_s, MOVE_LIMIT + 1)).fetchone()[0] > MOVE_LIMIT:
        return None
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(part)).fetchone()[0]
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # The whole history first, as every write takes it: a drop taking the partition first
            # could deadlock with a write holding the history and waiting for the partition.
            conn.execute(sql.SQL("LOCK TABLE ONLY {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(TABLE)))
            conn.execute(sql.SQL("CREATE TEMP TABLE history_kept ON COMMIT DROP AS {}").format(keep),
                         (older_than_s,))
            conn.execute(sql.SQL("DROP TABLE {}").format(part))
            kept = conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM history_kept").format(
                sql.Identifier(TABLE))).rowcount
    except psycopg.errors.LockNotAvailable:
        log.info("history_partition_busy", partition=partition.name, lock_timeout=LOCK_TIMEOUT)
        return None
    log.info("history_partition_dropped", partition=partition.name, rows=rows - kept, kept_rows=kept,
             older_than_s=older_than_s)
    return rows - kept
