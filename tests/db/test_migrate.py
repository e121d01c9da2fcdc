"""`drip db upgrade` and the history statements, against real PostgreSQL."""

from __future__ import annotations

import secrets
import subprocess
import sys
import zipfile

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from structlog.testing import capture_logs

from drip.core.errors import DripError
from drip.db import connect as db_connect
from drip.db import migrate
from tests.conftest import PG_SERVER_URL
from tests.helpers import ROOT


@pytest.fixture
def fresh_url() -> str:
    """The URL of a database that does not exist yet (dropped afterwards)."""
    url = make_conninfo(PG_SERVER_URL, dbname=f"drip_fresh_{secrets.token_hex(4)}")
    yield url
    db_connect.drop_database(url)


def applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM drip_migrations ORDER BY name")]


def test_upgrade_creates_the_database_and_applies_every_migration(fresh_url):
    """A missing database is created; every db/*.sql is applied and recorded."""
    names = [m.name for m in migrate.migrations()]
    assert migrate.upgrade(fresh_url) == names
    assert applied(fresh_url) == names
    with psycopg.connect(fresh_url) as conn:
        columns = {row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'sequential_queue'")}
    assert {"id", "queue", "location_id", "workflow_id", "contact_id", "payload", "status", "run_at", "attempts",
            "last_error", "enqueued_at", "started_at", "finished_at"} <= columns


def test_upgrade_twice_applies_nothing_the_second_time(fresh_url):
    """A second upgrade finds nothing to do."""
    migrate.upgrade(fresh_url)
    assert migrate.upgrade(fresh_url) == []


def test_two_upgrades_at_once_apply_each_migration_once(fresh_url):
    """Two `drip db upgrade` processes started together both succeed; each migration is applied once."""
    env = {"DRIP_DATABASE_URL": fresh_url, "PATH": "/usr/bin:/bin"}
    runs = [subprocess.Popen([sys.executable, "-m", "drip", "db", "upgrade"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert applied(fresh_url) == [m.name for m in migrate.migrations()]


def test_an_edited_migration_is_refused(fresh_url):
    """If a landed migration's text changed, upgrade stops and says so instead of skipping it."""
    migrate.upgrade(fresh_url)
    with psycopg.connect(fresh_url) as conn:
        conn.execute("UPDATE drip_migrations SET checksum = 'other'")
    with pytest.raises(DripError, match="edited after it was applied"):
        migrate.upgrade(fresh_url)


@pytest.mark.slow
def test_upgrade_works_from_the_built_wheel(fresh_url, tmp_path):
    """The wheel carries db/ as drip/migrations, and `drip db upgrade` finds them outside the checkout."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("drip-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "drip/migrations/0001_sequential_queue.sql" in names
        z.extractall(tmp_path / "site")
    result = subprocess.run(
        [sys.executable, "-m", "drip", "db", "upgrade"],
        env={"DRIP_DATABASE_URL": fresh_url, "PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert applied(fresh_url) == [m.name for m in migrate.migrations()]


def test_each_statement_of_a_migration_is_logged_as_it_finishes(fresh_url):
    """upgrade logs migration_step_applied for every statement (step n of N, its duration), then migration_applied."""
    with capture_logs() as logs:
        migrate.upgrade(fresh_url)
    steps = [e for e in logs if e["event"] == "migration_step_applied"]
    assert len(steps) == sum(len(m.statements) for m in migrate.migrations())
    last = [e for e in steps if e["migration"] == "0003_history_retention.sql"]
    assert [e["step"] for e in last] == [1, 2, 3] and {e["steps"] for e in last} == {3}
    assert last[1]["statement"].startswith("CREATE INDEX sequential_queue_finished") and "duration_ms" in last[1]
    assert [e["migration"] for e in logs if e["event"] == "migration_applied"] == [m.name for m in migrate.migrations()]
