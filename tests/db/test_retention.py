"""Retention: `drip db prune` and the recorder's automatic retention remove finished rows past
DRIP_HISTORY_RETENTION, keep recent ones, and keep unfinished messages' rows whatever their age."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from drip.cli import main as cli
from drip.core import settings as config
from drip.core.messages import new_id
from drip.db import partitions
from drip.db.history import HistoryRow, HistoryWriter
from drip.db.retention import Retention
from drip.work.recorder import Recorder
from tests.helpers import id_at, wait_for

DAY_MS = 86_400_000


def now_ms() -> int:
    return round(time.time() * 1000)


@pytest.fixture
def url(history_url: str) -> str:
    """The module's database, emptied for this test, with the days of the last 70 (made ahead, as they
    would have been)."""
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("TRUNCATE sequential_queue")
        partitions.ensure(conn, days_back=70)
    return history_url


def write_rows(url: str) -> dict[str, set[str]]:
    """Rows finished 60 days ago (done, dead, cancelled), finished today, and old unfinished ones
    (queued, scheduled, failed and waiting for a retry) accepted 60 days ago; their ids by kind,
    each of its acceptance time (so the old ones are in the day 60 days back)."""
    old, today = now_ms() - 60 * DAY_MS, now_ms() - 3_600_000
    ids: dict[str, set[str]] = {"old finished": set(), "today": set(), "old unfinished": set()}
    rows = []
    for status in ("done", "dead", "cancelled"):
        for at, kind in ((old, "old finished"), (today, "today")):
            mid = id_at(at)
            ids[kind].add(mid)
            rows.append(HistoryRow(mid, status=status, queue="q", payload="{}", run_at_ms=at, enqueued_ms=at,
                                   attempts=1, started_ms=at + 10, finished_ms=at + 20))
    for status, run_at in (("queued", old), ("scheduled", now_ms() + DAY_MS), ("failed", old)):
        mid = id_at(old)
        ids["old unfinished"].add(mid)
        rows.append(HistoryRow(mid, status=status, queue="q", payload="{}", run_at_ms=run_at, enqueued_ms=old,
                               attempts=1 if status == "failed" else 0,
                               started_ms=old + 10 if status == "failed" else None))
    writer = HistoryWriter(url)
    try:
        writer.write(rows)
    finally:
        writer.close()
    return ids


def row_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT id::text FROM sequential_queue")}


@pytest.fixture
def drip_cli(url, monkeypatch, capsys):
    """Run `drip ...` in this process against the module's database; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("DRIP_DATABASE_URL", url)
    monkeypatch.setenv("DRIP_HISTORY_RETENTION", "30d")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_prune_removes_old_finished_rows_and_keeps_today_and_unfinished(url, drip_cli):
    """With DRIP_HISTORY_RETENTION=30d, `drip db prune` removes the rows finished 60 days ago, counts
    them, keeps today's, and keeps unfinished rows accepted 60 days ago."""
    ids = write_rows(url)
    code, out, _ = drip_cli("db", "prune")
    assert code == 0 and out.startswith("pruned 3 finished rows older than 30d"), out
    assert row_ids(url) == ids["today"] | ids["old unfinished"]


def test_prune_dry_run_counts_and_removes_nothing(url, drip_cli):
    """`drip db prune --dry-run` says how many rows would go and leaves every row."""
    ids = write_rows(url)
    code, out, _ = drip_cli("db", "prune", "--dry-run")
    assert code == 0 and out.startswith("3 finished rows older than 30d") and "would be pruned" in out, out
    assert row_ids(url) == set().union(*ids.values())


def test_prune_older_than_overrides_the_retention_and_zero_keeps_everything(url, drip_cli):
    """--older-than 90d finds nothing to prune among 60-day-old rows; a retention of 0 prunes nothing."""
    ids = write_rows(url)
    assert drip_cli("db", "prune", "--older-than", "90d")[1].startswith("0 finished rows older than 90d")
    assert "keeps every row" in drip_cli("db", "prune", "--older-than", "0")[1]
    assert row_ids(url) == set().union(*ids.values())


def test_an_unreadable_age_is_refused_with_its_name(url, drip_cli):
    """--older-than 30 days (not a duration) exits non-zero naming the option."""
    code, _, err = drip_cli("db", "prune", "--older-than", "30 days")
    assert code != 0 and "--older-than" in err


def test_the_recorders_leader_prunes_automatically(url, store):
    """A recorder leading with DRIP_HISTORY_RETENTION=30d removes the old finished rows by itself and
    keeps today's and the old unfinished ones."""
    ids = write_rows(url)
    retention_s = config.load(history_retention="30d").history_retention_s
    recorder = Recorder(store, url, ttl_ms=3000, retention_s=retention_s)
    stop = threading.Event()
    thread = threading.Thread(target=recorder.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: not row_ids(url) & ids["old finished"], what="the old finished rows to be pruned")
    finally:
        stop.set()
        thread.join(10)
    assert row_ids(url) == ids["today"] | ids["old unfinished"]


def test_automatic_retention_deletes_one_batch_a_step_then_rests(url):
    """Retention.step deletes one batch per call until a batch comes back short, then nothing until `every_s`
    (the rows' ids are today's: their day is not past the retention, so they go by batches)."""
    old = now_ms() - 60 * DAY_MS
    writer = HistoryWriter(url)
    try:
        writer.write([HistoryRow(new_id(), status="done", queue="q", payload="{}", run_at_ms=old, enqueued_ms=old,
                                 attempts=1, started_ms=old, finished_ms=old) for _ in range(1200)])
    finally:
        writer.close()
    retention = Retention(url, 30 * 86400, batch_rows=500, pause_s=0, every_s=3600)
    try:
        assert [retention.step() for _ in range(4)] == [500, 500, 200, 0]
        assert retention.sweeps == 1 and row_ids(url) == set()
    finally:
        retention.close()
