"""Plain dramatiq on its Redis broker: the ceiling drip's ordering is paid out of.

Peer kind: throughput. It keeps NO order per key: every message goes to one
dramatiq queue and any of the 16 worker threads may take any message, so two
messages of the same key can run at once and out of order. drip is built on
dramatiq; this is what dramatiq does with drip's per-key scheduling left out.

Setup: `python -m dramatiq bench.peers.dramatiq_plain --processes 2 --threads 8`
(the benchmark's pool, 2 processes × 8 threads), default middleware and
prefetch, a RedisBroker on BENCH_REDIS_URL under a fresh namespace
(BENCH_NAMESPACE) per run, an actor taking (queue, n) that does nothing or, for the
end-to-end scenario (BENCH_DRAMATIQ_WORK=incr), one Redis INCR as drip's handler there
does (bench.handlers:count). The producer is
the caller's process calling `actor.send(queue, n)` in a loop on a broker
whose Redis client is a pipeline, flushed every 1,000 sends (dramatiq has no
batch enqueue; see _pipelined_producer). Completion is read from the broker's
own keys, not counted by the actor: `<namespace>:<queue>.msgs` holds each message body until its ack
(dispatch.lua: enqueue HSETs it, ack HDELs it), and `<namespace>:<queue>`
lists the ids not yet fetched; both empty means every message was handled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.client import Pipeline

REDIS_ENV = "BENCH_REDIS_URL"
NAMESPACE_ENV = "BENCH_NAMESPACE"
WORK_ENV = "BENCH_DRAMATIQ_WORK"
QUEUE = "default"
PROCESSES, THREADS = 2, 8
START_DEADLINE = 30.0
STOP_DEADLINE = 30.0
POLL = 0.01
CHUNK = 1000  # sends per pipeline round trip
ROOT = Path(__file__).resolve().parents[2]


_local = threading.local()


def noop(queue: str, n: int) -> None:
    """The task under test does nothing, so the figure is the queue's own cost."""


def incr(queue: str, n: int) -> None:
    """One Redis INCR on a client of the thread's own: the work of drip's end-to-end handler."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = redis.Redis.from_url(os.environ[REDIS_ENV])
    client.incr(f"{os.environ[NAMESPACE_ENV]}:done")


WORK = {"noop": noop, "incr": incr}


def _declare(broker: RedisBroker, work: str = "noop") -> dramatiq.Actor:
    """The same actor on the workers' broker and on the producer's (which only needs its name)."""
    return dramatiq.actor(WORK[work], actor_name="task", queue_name=QUEUE, broker=broker)


def _worker_broker() -> RedisBroker | None:
    """Set up the global broker the dramatiq CLI looks for, but only inside the worker processes."""
    namespace = os.environ.get(NAMESPACE_ENV)
    if not namespace:
        return None
    broker = RedisBroker(url=os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0"), namespace=namespace)
    dramatiq.set_broker(broker)
    _declare(broker, os.environ.get(WORK_ENV, "noop"))
    return broker


broker = _worker_broker()


def _start_workers(redis_url: str, namespace: str, log: Path, work: str) -> subprocess.Popen[bytes]:
    """A separate process group, so a hung pool can be killed whole without touching anyone else."""
    env = {**os.environ, REDIS_ENV: redis_url, NAMESPACE_ENV: namespace, WORK_ENV: work}
    command = [
        sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_plain",
        "--processes", str(PROCESSES), "--threads", str(THREADS),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _check_alive(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        raise RuntimeError(f"dramatiq exited with {process.returncode}: {log.read_text()[-2000:]}")


def _wait_until_up(client: redis.Redis, namespace: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Each worker process's broker ZADDs its id to __heartbeats__ on every fetch.

    So one member per process means every process is consuming.
    """
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        _check_alive(process, log)
        if client.zcard(f"{namespace}:__heartbeats__") >= PROCESSES:
            return
        time.sleep(0.05)
    raise RuntimeError(f"dramatiq workers not up within {START_DEADLINE:.0f} s: {log.read_text()[-2000:]}")


def _pipelined_producer(client: redis.Redis, namespace: str) -> tuple[RedisBroker, Pipeline]:
    """A broker whose client is a pipeline: each send queues its EVALSHA, execute() sends a chunk.

    dramatiq has no batch enqueue; this keeps its own send path (message ids,
    encoding, middleware) and only saves the round trips, as BullMQ's addBulk
    does for that peer. A plain send loop, one round trip each, is bound by
    the producer (about 1,500/s on the 2-core VM, the workers mostly idle), not by dramatiq.
    Every dispatch passes the Lua stack depth, which dramatiq probes once per
    process and caches on the class: the probe is run on a plain client first,
    since through a pipeline it would return the pipeline, not a number.
    """
    RedisBroker(client=client, namespace=namespace)._max_unpack_size()
    pipe = client.pipeline(transaction=False)
    return RedisBroker(client=pipe, namespace=namespace), pipe


def _enqueue(client: redis.Redis, namespace: str, queues: int, per_queue: int) -> None:
    """Each key's messages in order, keys interleaved, as a producer of many keys sends them."""
    producer, pipe = _pipelined_producer(client, namespace)
    actor = _declare(producer)
    sent = 0
    for n in range(per_queue):
        for q in range(queues):
            actor.send(f"q{q}", n)
            sent += 1
            if sent % CHUNK == 0:
                pipe.execute()
    pipe.execute()


def _wait_until_handled(client: redis.Redis, namespace: str, total: int,
                        process: subprocess.Popen[bytes], log: Path) -> None:
    """Acks HDEL the bodies: an empty hash and an empty list mean nothing is waiting or running."""
    msgs, pending, dead = f"{namespace}:{QUEUE}.msgs", f"{namespace}:{QUEUE}", f"{namespace}:{QUEUE}.XQ.msgs"
    deadline = time.monotonic() + 120 + total / 500
    left = waiting = None
    while time.monotonic() < deadline:
        with client.pipeline(transaction=False) as pipe:
            left, waiting, failed = pipe.hlen(msgs).llen(pending).hlen(dead).execute()
        if failed:
            raise RuntimeError(f"{failed} dramatiq messages were dead-lettered: {log.read_text()[-2000:]}")
        if left == 0 and waiting == 0:
            return
        _check_alive(process, log)
        time.sleep(POLL)
    raise RuntimeError(f"dramatiq did not handle {total} messages in time ({left} unacked, {waiting} not fetched)")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM is dramatiq's graceful stop (the main process forwards it); SIGKILL the group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _delete_namespace(client: redis.Redis, namespace: str) -> None:
    """SCAN+DEL of this run's keys only: db 0 is shared."""
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i:i + 500])


@contextlib.contextmanager
def _workers(redis_url: str, namespace: str, work: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The pool, up and consuming, with its log for error messages; stopped and its keys deleted on exit."""
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory(prefix="bench-dramatiq-") as folder:
        log = Path(folder) / "dramatiq.log"
        process = _start_workers(redis_url, namespace, log, work)
        try:
            _wait_until_up(client, namespace, process, log)
            yield process, log
        finally:
            _stop(process)
            _delete_namespace(client, namespace)
            client.close()


def throughput(queues: int, per_queue: int, redis_url: str, database_url: str, work: str = "noop") -> float:
    """One run: messages per second from just before the first send to the last ack seen; `work` is
    what the actor does per message ("noop", or "incr": one Redis INCR).

    database_url is unused: dramatiq needs only Redis.
    """
    namespace = f"bench-dramatiq-{secrets.token_hex(4)}"
    total = queues * per_queue
    with _workers(redis_url, namespace, work) as (process, log):
        client = redis.Redis.from_url(redis_url)
        try:
            started = time.perf_counter()
            _enqueue(client, namespace, queues, per_queue)
            _wait_until_handled(client, namespace, total, process, log)
            return total / (time.perf_counter() - started)
        finally:
            client.close()
