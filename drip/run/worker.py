"""One worker process: a dramatiq Worker running drains on DRIP_THREADS threads
(and promote_due on one more), plus the renewer thread that renews the drains'
leases and announces the process's slots, and the standby signal's listener that
wakes the drains standing by (drip.work.standby_signal).

Run by `drip worker` (drip.run.pool), once per process, as `python -m drip.run.worker`.
SIGTERM or SIGINT stops it gracefully: running handlers finish (up to
DRIP_SHUTDOWN_GRACE_S), are acked, and their leases are released.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import dramatiq

from drip.core import logs
from drip.core import settings as settings_module
from drip.core.retry import call_until
from drip.run import actors
from drip.run.broker import make_broker
from drip.run.pool import RECYCLE_EXIT
from drip.run.signals import stop_on_signals
from drip.store.clock import RedisClock
from drip.store.connection import REDIS_DOWN
from drip.store.stores import Store
from drip.work.context import DrainContext
from drip.work.renewer import Renewer, worker_member
from drip.work.routes import Router
from drip.work.standby_signal import StandbySignal

log = logs.get("drip.worker")

#: Longest wait of an idle consumer on the doorbell before it asks the broker again.
_IDLE_WAIT_MS = 1000
#: How often the main thread wakes to run a signal handler whose signal another thread received.
_SIGNAL_CHECK_S = 0.2


def run(settings: settings_module.Settings) -> None:
    store = Store.from_settings(settings)
    member = worker_member(settings.threads)
    stopping = threading.Event()
    clock = RedisClock()
    renewer = Renewer(store, ttl_ms=settings.lease_ttl_ms, member=member, clock=clock)
    standby = StandbySignal(store.workers)
    ctx = DrainContext(settings, store, Router.from_settings(settings), renewer, stopping, member, standby,
                       clock=clock)
    broker = make_broker(settings)
    actors.declare(broker, ctx)

    stop_on_signals(stopping)

    # One thread per drain slot, plus one for timer work (promote_due), which so
    # never waits behind drains. The broker caps how many grants a process takes
    # at its slots, so a grant never waits here while another process has a free one.
    worker = dramatiq.Worker(broker, worker_threads=settings.threads + 1, worker_timeout=_IDLE_WAIT_MS)
    worker.queue_prefetch = settings.threads
    ctx.waiting = worker.work_queue.qsize
    _start_renewer(renewer, stopping)
    ctx.tally.start(store.client, store.keys, settings.metrics_flush_ms, stopping)
    standby.listen(stopping)
    ctx.limits.watch(stopping)
    worker.start()
    log.info("worker_started", worker=member, threads=settings.threads)
    # A timed wait, never a bare wait(): the kernel hands SIGTERM/SIGINT to any thread of the process, and a
    # Python handler runs only when the main thread next runs bytecode. A main thread blocked for good in
    # wait() would never run it when the signal lands on one of dramatiq's threads (found: a Ctrl-C'd worker
    # that ignored its stop until the pool's SIGKILL, grace + 5 s later).
    while not stopping.wait(_SIGNAL_CHECK_S):
        pass
    if ctx.recycle.is_set():
        _recycle(ctx, worker)
    log.info("worker_stopping", worker=member)
    worker.stop(timeout=int(settings.shutdown_grace_s * 1000))
    renewer.stop()
    broker.close()
    log.info("worker_stopped", worker=member)


def _recycle(ctx: DrainContext, worker: dramatiq.Worker) -> None:
    """A handler could not be stopped: take no more grants, let the other drains finish their message and
    release their queues (grants already fetched are released unrun), then exit so the pool starts a fresh
    process. The stuck thread would keep dramatiq's orderly stop waiting, so this exits without it."""
    log.error("worker_recycling", worker=ctx.worker, stuck_handlers=ctx.limits.stuck())
    for consumer in worker.consumers.values():
        consumer.stop()
    deadline = time.monotonic() + ctx.settings.shutdown_grace_s
    pause = threading.Event()  # a timed Event wait: time.sleep fails under libfaketime (the clock-skew tests)
    while time.monotonic() < deadline and (worker.work_queue.qsize() or len(ctx.renewer.held()) > ctx.limits.stuck()):
        pause.wait(0.05)
    ctx.renewer.stop()
    log.info("worker_recycled", worker=ctx.worker)
    sys.stdout.flush()
    os._exit(RECYCLE_EXIT)


def _start_renewer(renewer: Renewer, stopping: threading.Event) -> None:
    """Announce this process once Redis answers (it may be starting alongside us)."""
    try:
        call_until(renewer.start, errors=REDIS_DOWN, stop=stopping, on_retry=lambda exc, wait_s: log.warning(
            "redis_unavailable", during="worker start", error=str(exc), retry_in_s=wait_s))
    except REDIS_DOWN:
        pass  # stopped before Redis answered


def main() -> None:
    # A grant is handed from the broker's consumer thread to a worker thread, and each handler step
    # waits on Redis: with CPython's default 5 ms GIL switch interval every hand-off between busy
    # threads could cost up to 5 ms. 0.5 ms took the enqueue -> handler p50 at 50 msgs/s from 8.8
    # to 5.5 ms and its p99 from 26 to 9 ms here.
    sys.setswitchinterval(0.0005)
    settings = settings_module.load()
    logs.setup(settings.log_level, settings.log_format, process="worker")
    run(settings)


if __name__ == "__main__":
    main()
