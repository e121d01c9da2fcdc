"""`drip worker`: DRIP_PROCESSES worker processes, each replaced when it dies.

dramatiq's own launcher stops everything when one process dies; a queue
service must instead keep going, so this small parent restarts a dead child
(backing off if children die right after starting) and forwards SIGTERM/SIGINT
for a graceful stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from drip import logs, procs
from drip.config import Settings

log = logs.get("drip.pool")

_CHECK_S = 0.2
#: A child that dies sooner than this after starting counts as a crash loop.
_QUICK_DEATH_S = 5.0
_MAX_RESTART_DELAY_S = 30.0


def run(settings: Settings) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    env = {**os.environ, "DRIP_THREADS": str(settings.threads)}
    slots: list[tuple[subprocess.Popen, float]] = []
    for _ in range(settings.processes):
        slots.append((procs.spawn(procs.python_module("drip.worker"), env), time.monotonic()))
    log.info("pool_started", processes=settings.processes, threads=settings.threads)
    restart_delay = 0.0
    while not stopping.wait(_CHECK_S):
        for index, (child, started) in enumerate(slots):
            code = child.poll()
            if code is None:
                continue
            quick = time.monotonic() - started < _QUICK_DEATH_S
            restart_delay = min(max(restart_delay * 2, 0.5), _MAX_RESTART_DELAY_S) if quick else 0.0
            log.error("worker_process_died", pid=child.pid, exit_code=code, restart_in_s=restart_delay)
            if stopping.wait(restart_delay):
                break
            replacement = procs.spawn(procs.python_module("drip.worker"), env)
            slots[index] = (replacement, time.monotonic())
            log.info("worker_process_replaced", pid=replacement.pid, replaced=child.pid)
    log.info("pool_stopping")
    procs.stop_all([child for child, _ in slots], settings.shutdown_grace_s + 5)
    return 0
