"""What every benchmark needs: a database of its own, and drip's processes under a prefix of their own."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from psycopg.conninfo import make_conninfo

from drip.core import settings as config
from drip.core.keys import Keys
from drip.db import connect as db_connect
from drip.db import migrate
from drip.store.connection import redis_client
from drip.store.stores import Store
from tests.helpers import Cluster, delete_prefix, wait_for


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh, migrated database (dropped afterwards); yields its URL."""
    url = make_conninfo(config.load().database_url, dbname=f"drip_bench_{secrets.token_hex(3)}")
    migrate.upgrade(url)
    try:
        yield url
    finally:
        db_connect.drop_database(url)


@dataclass
class Running:
    cluster: Cluster
    client: redis.Redis | redis.RedisCluster
    prefix: str

    def store(self) -> Store:
        return Store.connect(self.client, Keys(self.prefix))

    def done(self) -> int:
        """Messages the bench handlers have counted so far."""
        return int(self.client.get(f"{self.prefix}:bench:done") or 0)


@contextmanager
def drip_processes(database_url: str, handler: str, *, web: bool = True, processes: int = 2,
                   threads: int = 4, log_level: str = "warning", **settings: object) -> Iterator[Running]:
    """supervisor, worker pool (`processes` x `threads`) and web, with `handler` and any other `settings`
    (e.g. redis_url of a cluster); cleaned up afterwards. Logs at warning unless told: most scenarios
    measure drip's processing, not its log lines."""
    prefix = f"bench{secrets.token_hex(3)}"
    settings = config.load(prefix=prefix, database_url=database_url, processes=processes, threads=threads,
                           **settings)
    client = redis_client(settings.redis_url)
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-"))
    cluster = Cluster(settings, folder)
    try:
        cluster.start_all(web=web, DRIP_HANDLER=handler, DRIP_LOG_LEVEL=log_level)
        wait_for(lambda: client.zcard(Keys(prefix).workers()) == settings.processes, 30, "the worker pool")
        yield Running(cluster, client, prefix)
    finally:
        cluster.stop()
        delete_prefix(client, Keys(prefix))
        shutil.rmtree(folder, ignore_errors=True)
