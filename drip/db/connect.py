"""Connecting to PostgreSQL, and the database itself: created when missing, dropped by tests.

Every psycopg error that means "PostgreSQL cannot be reached" leaves this package as
Unavailable, so nothing above drip.db imports psycopg.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from drip.core.errors import ConfigError, Unavailable


def connect(url: str, *, autocommit: bool = False, timeout_s: int = 5) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=timeout_s)
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot connect to PostgreSQL ({describe(url)}): {first_line(exc)}") from None


@contextmanager
def session(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection for a few statements, closed after; any PostgreSQL error leaves as Unavailable."""
    try:
        with connect(url, autocommit=autocommit) as conn:
            yield conn
    except psycopg.Error as exc:
        raise Unavailable(f"PostgreSQL ({describe(url)}): {first_line(exc)}") from None


def close_quietly(conn: psycopg.Connection | None) -> None:
    """Close a connection that may already be broken (what it was doing is lost either way)."""
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error:
            pass


def describe(url: str) -> str:
    """host/port/dbname of a connection URL, without its password (safe to log)."""
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _missing_database(exc: psycopg.OperationalError) -> bool:
    """The server answered, but the database named in the URL does not exist yet."""
    return "does not exist" in str(exc)


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it is missing; True when it was created."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return False
    except psycopg.OperationalError as exc:
        if not _missing_database(exc):
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


def answers(url: str) -> bool:
    """Whether a PostgreSQL server answers at `url` (a missing database counts: it can be created)."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
        return True
    except psycopg.OperationalError as exc:
        return _missing_database(exc)
