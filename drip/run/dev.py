"""`drip dev`: the whole service in one command for local use.

Uses Redis and PostgreSQL at DRIP_REDIS_URL / DRIP_DATABASE_URL (or the
defaults); when a URL is unset and nothing answers at its default, starts an
embedded server (drip[embedded]) with its data under ./.drip/. Then applies
migrations and runs web, supervisor, worker and console as child processes; Ctrl-C or
SIGTERM stops them all, and none outlives this process.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from drip.core import logs
from drip.core import settings as settings_module
from drip.db import connect as db_connect
from drip.db.migrate import upgrade
from drip.run import embedded, procs
from drip.run.signals import stop_on_signals
from drip.store.connection import redis_answers

log = logs.get("drip.dev")

_DATA = Path(".drip")


def run(host: str, port: int, *, force_embedded: bool = False) -> int:
    # Embedded servers' URLs go into this process's environment: config.load()
    # below and every child see the same values.
    env = os.environ
    servers: list = []
    if force_embedded or (not settings_module.explicitly_set("redis_url")
                          and not redis_answers(settings_module.DEFAULT_REDIS_URL)):
        url, process = embedded.start_valkey(_DATA / "valkey")
        servers.append(process)
        env["DRIP_REDIS_URL"] = url
        log.info("embedded_redis_started", url=url, data=str(_DATA / "valkey"))
    if force_embedded or (not settings_module.explicitly_set("database_url")
                          and not db_connect.answers(settings_module.DEFAULT_DATABASE_URL)):
        url, pg = embedded.start_postgres(_DATA / "pg")
        servers.append(pg)
        env["DRIP_DATABASE_URL"] = url
        log.info("embedded_postgres_started", data=str(_DATA / "pg"))
    try:
        settings = settings_module.load()
        applied = upgrade(settings.database_url)
        log.info("database_ready", database=db_connect.describe(settings.database_url), migrations_applied=applied)
        return _run_children(host, port, env, settings.shutdown_grace_s)
    finally:
        for server in servers:
            if isinstance(server, subprocess.Popen):
                procs.stop_all([server], 10)
            else:
                server.cleanup()


def _run_children(host: str, port: int, env: os._Environ, grace_s: float) -> int:
    stop = threading.Event()
    stop_on_signals(stop)
    children = {
        "web": procs.spawn(procs.python_module("drip", "web", "--host", host, "--port", str(port)), env),
        "supervisor": procs.spawn(procs.python_module("drip", "supervisor"), env),
        "worker": procs.spawn(procs.python_module("drip", "worker"), env),
        # Open on loopback while DRIP_CONSOLE_TOKENS is unset (drip console refuses that anywhere else).
        "console": procs.spawn(procs.python_module("drip", "console", "--dev"), env),
    }
    log.info("dev_started", url=f"http://{host}:{port}", pids={n: c.pid for n, c in children.items()})
    code = 0
    while not stop.wait(0.2):
        dead = {name: c.returncode for name, c in children.items() if c.poll() is not None}
        if dead:
            log.error("dev_process_exited", exited=dead)
            code = 1
            break
    procs.stop_all(children.values(), grace_s + 10)
    log.info("dev_stopped")
    return code
