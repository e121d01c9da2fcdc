"""The floor of drip's web stack: a bare Starlette app whose POST /enqueue does one XADD.

Peer kind: webhook. It keeps no order per key and does nothing drip does besides
parsing the JSON body and appending it to one Redis stream: no validation, no
auth, no per-queue routing. Whatever drip's POST /enqueue costs above this
figure is drip's own work; this is what the same stack costs with none of it.

Setup, the same as drip's web process: uvicorn with uvloop and httptools,
access log off, log level warning, one worker process; redis.asyncio with
hiredis; msgspec for JSON. The stream key comes from BENCH_STREAM (one fresh
key per run, deleted afterwards), the Redis URL from BENCH_REDIS_URL.

    with webhook(8123, "redis://127.0.0.1:6379/0") as target:
        ...  # load target.url + target.path with target.body
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import redis
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers import Target

STREAM_ENV = "BENCH_STREAM"
REDIS_ENV = "BENCH_REDIS_URL"
BODY = b'{"queue":"q","payload":{"n":1}}'
START_DEADLINE = 30.0
ROOT = Path(__file__).resolve().parents[2]


def _json(status: int, value: object) -> Response:
    """msgspec-encoded JSON, as drip answers, rather than Starlette's json.dumps."""
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


async def enqueue(request: Request) -> Response:
    """Parse the body (so a bad one costs what it costs drip: a 400) and XADD it once."""
    raw = await request.body()
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return _json(400, {"error": "body is not JSON"})
    state = request.app.state
    entry_id = await state.redis.xadd(state.stream, {"m": raw})
    return _json(202, {"id": entry_id.decode()})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """One client per process, made inside uvicorn's loop and pinged so a bad URL fails the start."""
    stream = os.environ.get(STREAM_ENV)
    if not stream:
        raise RuntimeError(f"{STREAM_ENV} is not set: start this app through webhook()")
    app.state.stream = stream
    app.state.redis = aioredis.Redis.from_url(os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0"))
    try:
        await app.state.redis.ping()
        yield
    finally:
        await app.state.redis.aclose()


app = Starlette(routes=[Route("/enqueue", enqueue, methods=["POST"])], lifespan=lifespan)


def _command(port: int) -> list[str]:
    """The flags drip's web process runs with, so the comparison is of the app, not of the server."""
    return [
        sys.executable, "-m", "uvicorn", "bench.peers.starlette_xadd:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """uvicorn binds only after the lifespan has started, so an open port means ready."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}: {log.read_text()[-2000:]}")
        if _answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"uvicorn did not answer on port {port} within {START_DEADLINE:.0f} s: {log.read_text()[-2000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets uvicorn run the lifespan shutdown; kill only if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def webhook(port: int, redis_url: str) -> Iterator[Target]:
    """Start the app on `port` with a fresh stream; stop it and delete the stream on exit."""
    if _answers(port):  # else the readiness poll would take another server for ours
        raise RuntimeError(f"port {port} is already in use")
    stream = f"bench:starlette:{secrets.token_hex(4)}"
    env = {**os.environ, STREAM_ENV: stream, REDIS_ENV: redis_url}
    with tempfile.NamedTemporaryFile(prefix="bench-starlette-", suffix=".log") as log:
        process = subprocess.Popen(_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(process, port, Path(log.name))
        except BaseException:
            _stop(process)  # it never served, so there is no stream to delete
            raise
        try:
            yield Target(f"http://127.0.0.1:{port}", "/enqueue", BODY)
        finally:
            _stop(process)
            _delete_stream(redis_url, stream)


def _delete_stream(redis_url: str, stream: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(stream)
    finally:
        client.close()
