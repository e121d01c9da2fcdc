"""Migrations (`drip db upgrade`): the files of db/ (shipped inside the wheel as drip/migrations),
applied in name order under an advisory lock, each recorded with its checksum so an edited
migration is noticed instead of silently skipped. SQL stays SQL.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import sqlparse

from drip.core import logs
from drip.core.errors import ConfigError, DripError
from drip.db import partitions
from drip.db.connect import ensure_database, session

log = logs.get("drip.migrate")

#: Arbitrary constant key of the advisory lock that serialises `drip db upgrade`.
_UPGRADE_LOCK = 0x64726970  # "drip"


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def statements(self) -> list[str]:
        """Its statements, one by one (sqlparse knows quoting and dollar-quoted bodies), so a long
        migration on a large table logs its progress step by step."""
        return [s for s in (part.strip() for part in sqlparse.split(self.sql)) if s.rstrip(";").strip()]


def migrations() -> list[Migration]:
    """db/*.sql in name order: from the installed package, else from the checkout (editable installs)."""
    packaged = resources.files("drip").joinpath("migrations")
    if packaged.is_dir():
        files = [(f.name, f.read_text()) for f in packaged.iterdir() if f.name.endswith(".sql")]
    else:
        folder = Path(__file__).resolve().parents[2] / "db"
        if not folder.is_dir():
            raise ConfigError(f"no migrations found (looked in the package and in {folder})")
        files = [(f.name, f.read_text()) for f in folder.glob("*.sql")]
    return [Migration(name, text) for name, text in sorted(files)]


def upgrade(url: str) -> list[str]:
    """Create the database if needed and apply the migrations it lacks; returns the names applied.

    Then the history's days ahead are created (drip.db.partitions). Safe to run twice or from
    several processes at once: an advisory lock
    serialises them and each migration commits together with its record.
    """
    ensure_database(url)
    applied_now = []
    with session(url, autocommit=True) as conn:
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
                started = time.monotonic()
                with conn.transaction():
                    _apply(conn, migration)
                    conn.execute(
                        "INSERT INTO drip_migrations (name, checksum) VALUES (%s, %s)",
                        (migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
                log.info("migration_applied", migration=migration.name,
                         duration_ms=round((time.monotonic() - started) * 1000))
            # The days ahead, so the service writes into days of their own before any recorder runs.
            partitions.ensure(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_UPGRADE_LOCK,))
    return applied_now


def _apply(conn, migration: Migration) -> None:
    """Run a migration's statements in order (inside its transaction), logging each as it finishes."""
    steps = migration.statements
    for n, statement in enumerate(steps, 1):
        started = time.monotonic()
        conn.execute(statement)
        log.info("migration_step_applied", migration=migration.name, step=n, steps=len(steps),
                 statement=_summary(statement), duration_ms=round((time.monotonic() - started) * 1000))


def _summary(statement: str) -> str:
    """A statement's first 80 characters, comments left out, on one line (for the progress log)."""
    return " ".join(sqlparse.format(statement, strip_comments=True).split())[:80]
