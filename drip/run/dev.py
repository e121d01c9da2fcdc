"""`drip dev`: the whole service in one command for local use.

Uses Redis and PostgreSQL at DRIP_REDIS_URL / DRIP_DATABASE_URL (or the
defaults); when a URL is unset and nothing answers at its default, starts an
embedded server (drip[embedded]) with its data under ./.drip/ and writes its
URL to ./.drip/env, so `drip status` and friends started in this folder find it.
Then applies migrations and runs web, supervisor, worker and console as child
processes, replacing one that dies. Ctrl-C or SIGTERM stops drip's processes first
and the servers last, and none outlives this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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
_CHECK_S = 0.2
#: A child that dies sooner than this after starting died "right after start".
QUICK_DEATH_S = 10.0
#: That many deaths right after start in a row end `drip dev`: the child cannot run, restarting will not help.
QUICK_DEATHS = 3
#: Pause before a replacement starts: time for a Ctrl-C that killed the child to reach this process too.
_RESTART_DELAY_S = 0.5


def run(host: str, port: int, *, force_embedded: bool = False) -> int:
    # Embedded servers' URLs go into this process's environment: config.load()
    # below and every child see the same values.
    env = os.environ
    servers: list = []
    written: dict[str, str] = {}
    settings_module.remove_local_env()  # an old run's addresses would mislead every other command
    try:
        if force_embedded or (not settings_module.explicitly_set("redis_url")
                              and not redis_answers(settings_module.DEFAULT_REDIS_URL)):
            url, process = embedded.start_valkey(_DATA / "valkey")
            servers.append(process)
            env["DRIP_REDIS_URL"] = written["DRIP_REDIS_URL"] = url
            log.info("embedded_redis_started", url=url, data=str(_DATA / "valkey"))
        if force_embedded or (not settings_module.explicitly_set("database_url")
                              and not db_connect.answers(settings_module.DEFAULT_DATABASE_URL)):
            url, pg = embedded.start_postgres(_DATA / "pg")
            servers.append(pg)
            env["DRIP_DATABASE_URL"] = written["DRIP_DATABASE_URL"] = url
            log.info("embedded_postgres_started", data=str(_DATA / "pg"))
        if written:
            path = settings_module.write_local_env(
                written, f"written by drip dev (pid {os.getpid()}): its embedded servers; removed when it stops")
            log.info("local_env_written", path=str(path), variables=sorted(written))
        settings = settings_module.load(local=False)
        applied = upgrade(settings.database_url)
        log.info("database_ready", database=db_connect.describe(settings.database_url), migrations_applied=applied)
        return _run_children(host, port, env, settings.shutdown_grace_s)
    finally:
        if written:
            settings_module.remove_local_env()
        # The servers go last, after every drip process has stopped: a worker that loses Redis mid-shutdown
        # would spend its grace retrying and log its connection errors.
        for server in servers:
            if isinstance(server, subprocess.Popen):
                procs.stop_all([server], 10)
            else:
                server.cleanup()


@dataclass
class _Child:
    """One of drip dev's processes, and how often in a row it died right after starting."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    process: subprocess.Popen = field(init=False)
    started: float = field(init=False)
    quick_deaths: int = 0

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        self.process = procs.spawn(self.argv, self.env)
        self.started = time.monotonic()


def _run_children(host: str, port: int, env: Mapping[str, str], grace_s: float) -> int:
    stop = threading.Event()
    stop_on_signals(stop)
    children = [
        _Child("web", procs.python_module("drip", "web", "--host", host, "--port", str(port)), env),
        _Child("supervisor", procs.python_module("drip", "supervisor"), env),
        _Child("worker", procs.python_module("drip", "worker"), env),
        # Open on loopback while DRIP_CONSOLE_TOKENS is unset (drip console refuses that anywhere else).
        _Child("console", procs.python_module("drip", "console", "--dev"), env),
    ]
    log.info("dev_started", url=f"http://{host}:{port}", pids={c.name: c.process.pid for c in children})
    code = 0
    while code == 0 and not stop.wait(_CHECK_S):
        for child in children:
            if child.process.poll() is None:
                continue
            if stop.wait(_RESTART_DELAY_S):  # it died of the Ctrl-C that is stopping everything
                break
            if not _replace(child):
                code = 1
                break
    procs.stop_all([c.process for c in children], grace_s + 10)
    log.info("dev_stopped")
    return code


def _replace(child: _Child) -> bool:
    """Start a dead child again, as `drip worker`'s pool does; False when it keeps dying right after start."""
    exit_code, pid = child.process.returncode, child.process.pid
    child.quick_deaths = child.quick_deaths + 1 if time.monotonic() - child.started < QUICK_DEATH_S else 0
    if child.quick_deaths >= QUICK_DEATHS:
        log.error("dev_process_keeps_dying", process=child.name, exit_code=exit_code, deaths=child.quick_deaths)
        print(f"drip dev: `drip {child.name}` died {child.quick_deaths} times in a row within {QUICK_DEATH_S:g} s "
              f"of starting (last exit code {exit_code}); its own error is above. Stopping.", file=sys.stderr)
        return False
    child.start()
    log.warning("dev_process_replaced", process=child.name, exit_code=exit_code, replaced=pid, pid=child.process.pid)
    return True
