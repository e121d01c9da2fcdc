"""procrastinate with `lock=<queue>`: its documented way to run one key's jobs in order.

Peer kind: throughput. It KEEPS order per key: jobs deferred with the same
lock run one at a time, in id order (procrastinate_fetch_job_v2 skips a job
while its lock has a job doing, or an earlier job todo), and jobs of different
locks run in parallel. That is drip's promise, kept by PostgreSQL alone.

Setup: a fresh database per run (`bench_procr_<hex>`, on database_url's
server, dropped afterwards) with procrastinate's schema applied through its
API; an App on PsycopgConnector whose conninfo comes from BENCH_PROCR_CONNINFO;
an async no-op task. Workers: two `procrastinate worker --concurrency 8`
processes (procrastinate's worker is one asyncio process, and a deployment
scales it by running more of them; 2 × 8 matches the benchmark's pool of 2
processes × 8 threads), LISTEN/NOTIFY on, default polling. Before the clock,
100 jobs are run and the jobs table ANALYZEd, as autovacuum would have done
on any deployment that has run before (see _warm_up). The producer defers
every job in one statement (see _defer). Needs the `bench` extra:
pip install -e '.[bench]'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

try:
    import procrastinate
except ImportError:  # the `bench` extra is optional
    procrastinate = None

CONNINFO_ENV = "BENCH_PROCR_CONNINFO"
PROCESSES, CONCURRENCY = 2, 8
START_DEADLINE = 30.0
STOP_DEADLINE = 30.0
POLL = 0.05
WARMUP = 100  # jobs run and ANALYZEd before the clock starts (see _warm_up)
ROOT = Path(__file__).resolve().parents[2]


def _require() -> None:
    """A clear message rather than an AttributeError on None deep inside a run."""
    if procrastinate is None:
        raise RuntimeError("procrastinate is not installed: pip install -e '.[bench]'")


async def noop(n: int) -> None:
    """The task under test does nothing, so the figure is the queue's own cost."""


def make_app(conninfo: str) -> Any:
    """The same app, task and all, for the workers (from the environment) and for the producer."""
    _require()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    app.task(name="noop")(noop)
    return app


# What `procrastinate --app=bench.peers.procrastinate_lock.app worker` loads. The
# connector opens nothing until the worker starts, so importing this is free.
app = make_app(os.environ.get(CONNINFO_ENV, "")) if procrastinate is not None else None


def _admin(database_url: str) -> psycopg.Connection:
    """CREATE and DROP DATABASE cannot run in a transaction."""
    try:
        return psycopg.connect(database_url, autocommit=True)
    except psycopg.Error as error:
        raise RuntimeError(f"cannot connect to PostgreSQL at {database_url!r}: {error}") from error


@contextlib.contextmanager
def _database(database_url: str) -> Iterator[str]:
    """A database of this run's own on the same server, dropped (workers or not) on exit."""
    name = f"bench_procr_{secrets.token_hex(4)}"
    with _admin(database_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(database_url, dbname=name)
    finally:
        with _admin(database_url) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def _apply_schema(conninfo: str) -> None:
    async with make_app(conninfo).open_async() as opened:
        await opened.schema_manager.apply_schema_async()


def _start_workers(conninfo: str, log: Path) -> list[subprocess.Popen[bytes]]:
    """procrastinate's own CLI, as a deployment runs it; each worker in its own process group."""
    env = {**os.environ, CONNINFO_ENV: conninfo}
    command = [
        sys.executable, "-m", "procrastinate", "--app=bench.peers.procrastinate_lock.app",
        "--log-level=warning", "worker", f"--concurrency={CONCURRENCY}",
    ]
    with log.open("ab") as out:
        return [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
            for _ in range(PROCESSES)
        ]


def _check_alive(workers: list[subprocess.Popen[bytes]], log: Path) -> None:
    for worker in workers:
        if worker.poll() is not None:
            raise RuntimeError(f"procrastinate worker exited with {worker.returncode}: {log.read_text()[-2000:]}")


def _wait_until_up(conn: psycopg.Connection, workers: list[subprocess.Popen[bytes]], log: Path) -> None:
    """Each worker registers a row in procrastinate_workers when it starts, before fetching."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        _check_alive(workers, log)
        if conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0] >= PROCESSES:
            return
        time.sleep(0.05)
    raise RuntimeError(f"procrastinate workers not up within {START_DEADLINE:.0f} s: {log.read_text()[-2000:]}")


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM is procrastinate's graceful stop; SIGKILL a worker's group only if it hangs."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


@contextlib.contextmanager
def _workers(conninfo: str) -> Iterator[tuple[list[subprocess.Popen[bytes]], Path]]:
    """The workers, registered and listening, with their log for error messages; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-procrastinate-") as folder, \
            psycopg.connect(conninfo, autocommit=True) as conn:
        log = Path(folder) / "workers.log"
        workers = _start_workers(conninfo, log)
        try:
            _wait_until_up(conn, workers, log)
            yield workers, log
        finally:
            _stop(workers)


async def _defer(conninfo: str, queues: int, per_queue: int) -> float:
    """Every job in one INSERT, keys interleaved, each job with its key as lock; returns the start time.

    procrastinate's batch_defer gives one configuration (so one lock) to the
    whole batch; the job manager's batch_defer_jobs_async, which it calls, takes
    jobs each with their own lock, made by task.configure(lock=...). The clock
    starts once the producer's pool is open, as a running producer's would be.
    """
    producer = make_app(conninfo)
    task = producer.tasks["noop"]
    async with producer.open_async():
        started = time.perf_counter()
        jobs = [
            task.configure(lock=f"q{q}").make_new_job(n=n)
            for n in range(per_queue)
            for q in range(queues)
        ]
        await producer.job_manager.batch_defer_jobs_async(jobs)
    return started


def _warm_up(conninfo: str, conn: psycopg.Connection,
             workers: list[subprocess.Popen[bytes]], log: Path) -> None:
    """Run a few jobs, then ANALYZE, so the timed run meets the table a deployment has.

    A table never analyzed (a fresh database, before autovacuum's first pass)
    makes the planner sort every pending job through the lock's NOT EXISTS on
    each fetch: ~30 jobs/s at 200 × 20 instead of ~250 on the 2-core VM. Any deployment that has
    run before has statistics; this gives the run some, outside the clock.
    """
    asyncio.run(_defer(conninfo, WARMUP, 1))
    _wait_until_done(conn, WARMUP, workers, log)
    conn.execute("ANALYZE procrastinate_jobs")


def _wait_until_done(conn: psycopg.Connection, total: int,
                     workers: list[subprocess.Popen[bytes]], log: Path) -> None:
    """Jobs stay in the table as 'succeeded' (no --delete-jobs), so a count says when all ran.

    `total` includes the warm-up's jobs, which stay there too.
    """
    deadline = time.monotonic() + 120 + total / 50
    done = 0
    while time.monotonic() < deadline:
        done, failed = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
            " count(*) FILTER (WHERE status IN ('failed', 'aborted')) FROM procrastinate_jobs"
        ).fetchone()
        if failed:
            raise RuntimeError(f"{failed} procrastinate jobs failed: {log.read_text()[-2000:]}")
        if done >= total:
            return
        _check_alive(workers, log)
        time.sleep(POLL)
    raise RuntimeError(f"procrastinate ran {done} of {total} jobs in time")


def throughput(queues: int, per_queue: int, redis_url: str, database_url: str) -> float:
    """One run: jobs per second from just before the defer to the last job seen succeeded.

    redis_url is unused: procrastinate needs only PostgreSQL. It is slow, so the
    caller may pass fewer queues or per_queue than for the Redis peers, but the
    rate depends on the backlog: each fetch checks its job's lock against every
    pending job (the index procrastinate_jobs_id_lock_idx_v1 leads with id, not
    lock), so one deferred batch of 1,000 × 20 runs at about a third of the rate
    of 100 × 10. State the scale with the figure.
    """
    _require()
    total = queues * per_queue
    with _database(database_url) as conninfo:
        asyncio.run(_apply_schema(conninfo))
        with _workers(conninfo) as (workers, log), psycopg.connect(conninfo, autocommit=True) as conn:
            _warm_up(conninfo, conn, workers, log)
            started = asyncio.run(_defer(conninfo, queues, per_queue))
            _wait_until_done(conn, WARMUP + total, workers, log)
            return total / (time.perf_counter() - started)
