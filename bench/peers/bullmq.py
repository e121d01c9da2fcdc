"""BullMQ (Node) as a peer: the queue the seeds' webhooks were built on, run from bench/peers/node/.

One BullMQ queue with a worker of concurrency 10 takes every message; the "queues" of a run are
only a field of the job data, so it keeps no order per key (jobs of one key may run in any order,
or at once). Node packages are installed by `npm ci` from the committed package-lock.json.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import redis

from bench.peers import Target
from tests.helpers import wait_for

NODE_DIR = Path(__file__).parent / "node"
THROUGHPUT_TIMEOUT_S = 900  # above throughput.js's own 600 s deadline, so its error is the one reported
LISTEN_TIMEOUT_S = 30
STOP_GRACE_S = 5
BODY = b'{"queue":"q","payload":{"n":1}}'


def _require(tool: str) -> str:
    """The path of `tool`, or a RuntimeError saying what to install (a bare FileNotFoundError hides why)."""
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} not found on PATH: the BullMQ peer needs Node.js >= 20 and npm")
    return path


def ensure_installed() -> None:
    """Install the Node packages once; `npm ci` keeps the versions of package-lock.json."""
    _require("node")
    npm = _require("npm")
    if (NODE_DIR / "node_modules").is_dir():
        return
    for command in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "install", "--no-audit", "--no-fund"]):
        done = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True)
        if done.returncode == 0:
            return
    raise RuntimeError(f"npm could not install {NODE_DIR}:\n{done.stderr}")


def _redis_args(redis_url: str) -> dict[str, str]:
    """Host, port and db of `redis_url`, which the Node scripts take instead of a URL."""
    parts = urlsplit(redis_url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 6379),
        "db": parts.path.lstrip("/") or "0",
    }


def _new_prefix() -> str:
    """A BullMQ prefix no one else uses, so cleanup can delete everything under it."""
    return f"bench-bull-{secrets.token_hex(4)}"


def _delete_prefix(redis_url: str, prefix: str) -> None:
    """Delete every key under `prefix` (db 0 is shared with other projects: never FLUSHDB)."""
    client = redis.Redis.from_url(redis_url)
    try:
        batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i : i + 500])
    finally:
        client.close()


def throughput(queues: int, per_queue: int, redis_url: str, database_url: str) -> float:
    """Messages per second of one throughput.js run (first add to last completion).

    `database_url` is unused: BullMQ keeps everything in Redis and records no history.
    """
    ensure_installed()
    prefix = _new_prefix()
    args = [f"--{name}={value}" for name, value in _redis_args(redis_url).items()]
    args += [f"--queues={queues}", f"--per-queue={per_queue}", f"--prefix={prefix}"]
    try:
        done = subprocess.run([_require("node"), "throughput.js", *args], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=THROUGHPUT_TIMEOUT_S)
    finally:
        _delete_prefix(redis_url, prefix)  # throughput.js cleans up too; this covers a crash or timeout
    if done.returncode != 0:
        raise RuntimeError(f"throughput.js failed (exit {done.returncode}):\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["msgs_per_s"])


def _node_env(redis_url: str, prefix: str, **more: str) -> dict[str, str]:
    env = {**os.environ, "BULL_PREFIX": prefix, **more}
    return env | {f"REDIS_{name.upper()}": value for name, value in _redis_args(redis_url).items()}


def _read_all(stderr: IO[str]) -> str:
    stderr.seek(0)
    return stderr.read()


def _wait_listening(process: subprocess.Popen[str], stderr: IO[str]) -> None:
    """Block until webhook.js prints "listening"; raise with its stderr if it dies or is too slow.

    select() before each readline, so a server that hangs silently cannot block past the deadline.
    """
    stdout = process.stdout
    if stdout is None:
        raise RuntimeError("webhook.js was started without a stdout pipe")
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([stdout], [], [], left)
        if not ready:
            break
        line = stdout.readline()
        if line.strip() == "listening":
            return
        if not line:  # EOF: the server exited
            process.wait()
            raise RuntimeError(f"webhook.js exited (code {process.returncode}) before listening:\n"
                               f"{_read_all(stderr)}")
    raise RuntimeError(f"webhook.js did not print 'listening' within {LISTEN_TIMEOUT_S} s:\n{_read_all(stderr)}")


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (webhook.js closes its queue and exits), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def webhook(port: int, redis_url: str, processes: int = 1) -> Iterator[Target]:
    """webhook.js on 127.0.0.1:`port` under a fresh prefix (`processes` > 1: that many node:cluster
    workers sharing the port); stopped and its keys deleted on exit."""
    ensure_installed()
    prefix = _new_prefix()
    env = _node_env(redis_url, prefix, PORT=str(port), WORKERS=str(processes))
    # stderr to a file, not a pipe: nobody reads it while the server runs, and a full pipe
    # would stall the server on a burst of error traces under load.
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen([_require("node"), "webhook.js"], cwd=NODE_DIR, env=env,
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            _wait_listening(process, stderr)
            yield Target(url=f"http://127.0.0.1:{port}", path="/enqueue", body=BODY)
        finally:
            _stop(process)
            _delete_prefix(redis_url, prefix)


def _wait_ready(process: subprocess.Popen, stderr: IO[str]) -> None:
    """Block until worker.js says "ready" on its stderr (a file); raise with it if it dies or is too slow."""
    def ready() -> bool:
        if "ready" in _read_all(stderr).splitlines():
            return True
        if process.poll() is not None:
            raise RuntimeError(f"worker.js exited (code {process.returncode}) before it was ready:\n"
                               f"{_read_all(stderr)}")
        return False

    wait_for(ready, LISTEN_TIMEOUT_S, lambda: f"worker.js to be ready:\n{_read_all(stderr)}")


@contextmanager
def webhook_and_worker(port: int, redis_url: str) -> Iterator[tuple[str, Callable[[], int]]]:
    """The seed's shape end to end: webhook.js on `port` and worker.js (concurrency 10, one INCR per job,
    a line logged per job to a file), under a fresh prefix. Yields the webhook's URL and how many jobs
    the worker has handled so far; stopped and its keys deleted on exit."""
    ensure_installed()
    prefix = _new_prefix()
    counter = f"{prefix}:done"
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryFile(mode="w+") as web_err, tempfile.TemporaryFile(mode="w+") as worker_err, \
            tempfile.TemporaryFile(mode="w+") as worker_log:
        web = subprocess.Popen([_require("node"), "webhook.js"], cwd=NODE_DIR, env=_node_env(
            redis_url, prefix, PORT=str(port)), stdout=subprocess.PIPE, stderr=web_err, text=True)
        worker = subprocess.Popen([_require("node"), "worker.js"], cwd=NODE_DIR, env=_node_env(
            redis_url, prefix, COUNTER=counter), stdout=worker_log, stderr=worker_err, text=True)
        try:
            _wait_listening(web, web_err)
            _wait_ready(worker, worker_err)
            yield f"http://127.0.0.1:{port}", lambda: int(client.get(counter) or 0)
        finally:
            _stop(worker)
            _stop(web)
            client.close()
            _delete_prefix(redis_url, prefix)
