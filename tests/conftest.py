"""Fixtures on real services: each test gets its own key prefix, the session its own database.

DRIP_TEST_REDIS_URL and DRIP_TEST_DATABASE_URL point the suite elsewhere
(defaults: the local servers drip's own defaults use).
"""

from __future__ import annotations

import os
import secrets

import pytest
import redis

from drip.core import settings as config
from drip.core.keys import Keys
from drip.db import connect as db_connect
from drip.db import migrate
from drip.store.connection import redis_client
from drip.store.stores import Store
from tests.helpers import Cluster, delete_prefix

REDIS_URL = os.environ.get("DRIP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_SERVER_URL = os.environ.get("DRIP_TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def database_url() -> str:
    """A database of this test session, migrated, dropped at the end."""
    from psycopg.conninfo import make_conninfo

    url = make_conninfo(PG_SERVER_URL, dbname=f"drip_test_{secrets.token_hex(4)}")
    migrate.upgrade(url)
    yield url
    db_connect.drop_database(url)


@pytest.fixture(scope="module")
def history_url() -> str:
    """A migrated database of one test module's own, dropped afterwards: for tests that read the history
    as a whole (retention, plans, the lateness of the last releases), which other tests' rows would sway."""
    from psycopg.conninfo import make_conninfo

    url = make_conninfo(PG_SERVER_URL, dbname=f"drip_history_{secrets.token_hex(4)}")
    migrate.upgrade(url)
    yield url
    db_connect.drop_database(url)


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test; its keys are deleted afterwards."""
    name = f"t{secrets.token_hex(4)}"
    yield name
    delete_prefix(redis.Redis.from_url(REDIS_URL), Keys(name))


@pytest.fixture
def settings(prefix: str, database_url: str) -> config.Settings:
    return config.load(
        prefix=prefix,
        redis_url=REDIS_URL,
        database_url=database_url,
        processes=2,
        threads=4,
        lease_ttl_ms=3000,
        backoff_base_ms=10,
        backoff_max_ms=50,
    )


@pytest.fixture
def r() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def store(settings: config.Settings) -> Store:
    return Store.connect(redis_client(settings.redis_url), Keys(settings.prefix))


@pytest.fixture
def cluster(settings: config.Settings, tmp_path, request) -> Cluster:
    """drip's real processes (supervisor, worker pool, web) for this test, stopped afterwards."""
    c = Cluster(settings, tmp_path)
    yield c
    c.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        c.dump_logs()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
