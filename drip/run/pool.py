"""Process pools: `drip worker`'s DRIP_PROCESSES worker processes and `drip web --processes N`'s
web processes, each replaced when it dies.

dramatiq's own launcher stops everything when one process dies; a queue
service must instead keep going, so this small parent restarts a dead child
(backing off if children die right after starting) and forwards SIGTERM/SIGINT
for a graceful stop.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping

from drip.core import logs
from drip.core.settings import Settings
from drip.run import procs
from drip.run.signals import stop_on_signals

log = logs.get("drip.pool")

_CHECK_S = 0.2
#: A worker process's exit code when it replaced itself because a handler could not be stopped.
RECYCLE_EXIT = 3
#: A child that dies sooner than this after starting counts as a crash loop.
_QUICK_DEATH_S = 5.0
_MAX_RESTART_DELAY_S = 30.0


def run(settings: Settings) -> int:
    """`drip worker`: the worker processes."""
    env = {**os.environ, "DRIP_THREADS": str(settings.threads)}
    log.info("pool_started", role="worker", processes=settings.processes, threads=settings.threads)
    return supervise("worker", procs.python_module("drip.run.worker"), settings.processes, env,
                     settings.shutdown_grace_s + 5)


def supervise(role: str, argv: list[str], count: int, env: Mapping[str, str], grace_s: float) -> int:
    """Keep `count` children running `argv` until SIGTERM/SIGINT, then stop them (SIGTERM, and
    SIGKILL for any still running after `grace_s`)."""
    stopping = threading.Event()
    stop_on_signals(stopping)

    slots: list[tuple[subprocess.Popen, float]] = [(procs.spawn(argv, env), time.monotonic()) for _ in range(count)]
    restart_delay = 0.0
    while not stopping.wait(_CHECK_S):
        for index, (child, started) in enumerate(slots):
            code = child.poll()
            if code is None:
                continue
            quick = time.monotonic() - started < _QUICK_DEATH_S
            restart_delay = min(max(restart_delay * 2, 0.5), _MAX_RESTART_DELAY_S) if quick else 0.0
            if code == RECYCLE_EXIT:
                log.warning("process_recycled", role=role, pid=child.pid, restart_in_s=restart_delay)
            else:
                log.error("process_died", role=role, pid=child.pid, exit_code=code, restart_in_s=restart_delay)
            if stopping.wait(restart_delay):
                break
            replacement = procs.spawn(argv, env)
            slots[index] = (replacement, time.monotonic())
            log.info("process_replaced", role=role, pid=replacement.pid, replaced=child.pid)
    log.info("pool_stopping", role=role)
    procs.stop_all([child for child, _ in slots], grace_s)
    return 0
