"""A history database of one test module's own: retention and the plan checks change or load
many rows, which the session's shared database must not see."""

from __future__ import annotations

import secrets

import pytest
from psycopg.conninfo import make_conninfo

from drip.db import connect as db_connect
from drip.db import migrate
from tests.conftest import PG_SERVER_URL


@pytest.fixture(scope="module")
def history_url() -> str:
    """A migrated database of this module, dropped afterwards."""
    url = make_conninfo(PG_SERVER_URL, dbname=f"drip_history_{secrets.token_hex(4)}")
    migrate.upgrade(url)
    yield url
    db_connect.drop_database(url)
