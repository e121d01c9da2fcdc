"""The history partitioned by day (db/0004, drip.db.partitions): the migration keeps every row of an
existing table, retention drops a day whose rows are all finished and old and keeps a day holding
an unfinished message, and an id no day holds waits in the default partition until its day exists."""

from __future__ import annotations

import random
import secrets

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from drip.db import connect as db_connect
from drip.db import migrate, partitions, retention
from drip.db.history import HistoryRow, HistoryWriter
from tests.conftest import PG_SERVER_URL
from tests.helpers import id_at

DAY_MS = partitions.DAY_MS


def where(url: str) -> dict[str, str]:
    """Each row's id → the partition holding it."""
    with psycopg.connect(url) as conn:
        return {str(i): name for i, name in conn.execute("SELECT id, tableoid::regclass::text FROM sequential_queue")}


def rows_by_id(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {str(row[0]): row for row in conn.execute("SELECT * FROM sequential_queue")}


def checksum(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*), sum(hashtextextended(t::text, 0)) FROM sequential_queue AS t").fetchone()


def write(url: str, rows: list[HistoryRow]) -> None:
    writer = HistoryWriter(url)
    try:
        writer.write(rows)
    finally:
        writer.close()


def finished(mid: str, at: int, status: str = "done") -> HistoryRow:
    return HistoryRow(mid, status=status, queue="q", payload="{}", run_at_ms=at, enqueued_ms=at, attempts=1,
                      started_ms=at + 10, finished_ms=at + 20)


@pytest.fixture
def url(history_url: str) -> str:
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("TRUNCATE sequential_queue")
        partitions.ensure(conn, days_back=70)
    return history_url


@pytest.fixture
def now(url: str) -> int:
    with psycopg.connect(url) as conn:
        return partitions.now_ms(conn)


def test_upgrade_makes_the_days_ahead_and_rows_land_in_their_day(url, now):
    """After `drip db upgrade` today and the days ahead exist; a row lands in the day its id names."""
    with psycopg.connect(url) as conn:
        names = {p.name for p in partitions.listed(conn)}
    days = {partitions.day_name(now + n * DAY_MS) for n in range(partitions.DAYS_AHEAD + 1)}
    assert days <= names and partitions.DEFAULT in names
    mid = id_at(now)
    write(url, [finished(mid, now)])
    assert where(url) == {mid: partitions.day_name(now)}


def test_retention_drops_old_days_whole_and_keeps_their_unfinished_and_recent_rows(url, now):
    """Retention 30d: the days 45 and 40 days back go as tables; of their rows the queued one and the
    one finished today (scheduled long ahead) are kept, in the default partition; today is untouched."""
    old_day, other_day = now - 45 * DAY_MS, now - 40 * DAY_MS
    gone = [id_at(old_day + i) for i in range(20)] + [id_at(other_day + i) for i in range(5)]
    unfinished, late, today = id_at(other_day + 100), id_at(old_day + 100), id_at(now)
    write(url, [finished(m, old_day, status=random.choice(("done", "dead", "cancelled"))) for m in gone]
          + [HistoryRow(unfinished, status="queued", queue="q", payload="{}", run_at_ms=other_day,
                        enqueued_ms=other_day), finished(late, now - 60_000), finished(today, now)])
    before = {i: row for i, row in rows_by_id(url).items() if i in (unfinished, late)}
    assert retention.count_prunable(url, 30 * 86400) == 25
    assert retention.prune(url, 30 * 86400) == 25
    with psycopg.connect(url) as conn:
        names = {p.name for p in partitions.listed(conn)}
    assert partitions.day_name(old_day) not in names and partitions.day_name(other_day) not in names
    assert where(url) == {unfinished: partitions.DEFAULT, late: partitions.DEFAULT, today: partitions.day_name(now)}
    assert {i: row for i, row in rows_by_id(url).items() if i in (unfinished, late)} == before


def test_a_day_with_too_many_rows_to_keep_loses_its_old_rows_by_batches(url, now, monkeypatch):
    """Past MOVE_LIMIT rows to keep, the day stays and its old finished rows go batch by batch."""
    monkeypatch.setattr(partitions, "MOVE_LIMIT", 1)
    day = now - 45 * DAY_MS
    queued = [id_at(day + 200 + i) for i in range(2)]
    write(url, [finished(id_at(day + i), day) for i in range(7)]
          + [HistoryRow(m, status="queued", queue="q", payload="{}", run_at_ms=day, enqueued_ms=day) for m in queued])
    assert retention.prune(url, 30 * 86400, batch_rows=3) == 7
    assert where(url) == {m: partitions.day_name(day) for m in queued}


def test_an_id_no_day_holds_waits_in_the_default_and_moves_when_its_day_is_made(url, now):
    """A row whose id is a week ahead (a host's clock running fast) is written into the default partition;
    creating the days up to it moves it into its day, every column as it was."""
    ahead = now + 7 * DAY_MS
    mid = id_at(ahead)
    write(url, [finished(mid, ahead)])
    assert where(url) == {mid: partitions.DEFAULT}
    before = checksum(url)
    with psycopg.connect(url, autocommit=True) as conn:
        made = partitions.ensure(conn, days_ahead=7)
    assert partitions.day_name(ahead) in made
    assert where(url) == {mid: partitions.day_name(ahead)} and checksum(url) == before


@pytest.fixture
def layout_0003_url() -> str:
    """A database at layout 0003 (the table before partitions), dropped afterwards."""
    url = make_conninfo(PG_SERVER_URL, dbname=f"drip_layout_{secrets.token_hex(4)}")
    db_connect.ensure_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE drip_migrations (name text PRIMARY KEY, checksum text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        for m in migrate.migrations()[:3]:
            with conn.transaction():
                conn.execute(m.sql)
                conn.execute("INSERT INTO drip_migrations (name, checksum) VALUES (%s, %s)", (m.name, m.checksum))
    yield url
    db_connect.drop_database(url)


def test_the_migration_to_partitions_keeps_every_row(layout_0003_url):
    """db/0004 on a table of 0003's layout: count and checksum equal before and after; the old rows are
    one partition (not copied), a row with an id past tomorrow went to the default one; new days follow."""
    url = layout_0003_url
    with psycopg.connect(url) as conn:
        now = conn.execute("SELECT (extract(epoch FROM now()) * 1000)::bigint").fetchone()[0]
        ahead = id_at(now + 5 * DAY_MS)
        conn.execute(
            "INSERT INTO sequential_queue (id, queue, payload, status, run_at, enqueued_at, attempts, finished_at)"
            " SELECT %s::uuid, 'q', '{\"n\": 1}', 'done', now(), now(), 1, now()", (ahead,))
        for ms in (now - 50 * DAY_MS, now - DAY_MS, now):
            conn.execute(
                "INSERT INTO sequential_queue (id, queue, payload, status, run_at, enqueued_at, attempts,"
                " finished_at) SELECT (lpad(to_hex(%s + n), 12, '0') || '7' || substr(md5(n::text), 1, 3) || '8'"
                " || substr(md5(n::text), 4, 15))::uuid, 'q' || n, jsonb_build_object('n', n),"
                " (ARRAY['done', 'queued', 'dead'])[1 + n %% 3], now(), now(), 1, now()"
                " FROM generate_series(1, 300) AS n", (ms,))
    before = checksum(url)
    assert migrate.upgrade(url) == ["0004_history_partitions.sql"]
    assert checksum(url) == before
    placed = where(url)
    assert placed.pop(ahead) == partitions.DEFAULT
    assert set(placed.values()) == {"sequential_queue_legacy"}
    with psycopg.connect(url) as conn:
        names = [p.name for p in partitions.listed(conn)]
    assert names[0] == "sequential_queue_legacy" and partitions.day_name(now + DAY_MS) in names
