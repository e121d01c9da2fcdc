"""Dependencies going away for real: Redis killed -9 and restarted from its AOF, PostgreSQL cut off for 10 s."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import httpx
import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers import Cluster, TcpProxy, free_port, redis_server_binary, wait_for
from tests.sample_handlers import log_key, read_log

pytestmark = pytest.mark.slow


def start_redis(port: int, folder) -> subprocess.Popen:
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), 30, "the private Redis")
    return server


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


class Poster:
    """Posts one message per request, round-robin over queues, recording what was answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accepted: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            n = 0
            while not self.stop.is_set():
                try:
                    answer = client.post("/enqueue", json={"queue": f"o{n % 10}", "payload": {"n": n}})
                except httpx.HTTPError:
                    self.refused += 1
                    continue
                if answer.status_code == 202:
                    self.accepted.append(answer.json()["id"])
                elif answer.status_code == 503:
                    self.refused += 1
                else:
                    raise AssertionError(f"unexpected answer {answer.status_code}: {answer.text}")
                n += 1


def test_redis_killed_and_restarted_from_its_aof(settings, tmp_path):
    """kill -9 Redis (appendfsync always) mid-run and start it again: the webhook answered 503 meanwhile,
    and every message that got a 202 is handled."""
    port = free_port()
    server = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    private = settings.model_copy(update={"redis_url": url, "lease_ttl_ms": 1500})
    cluster = Cluster(private, tmp_path)
    client = redis.Redis.from_url(url)
    poster = None
    try:
        cluster.start_all()
        poster = Poster(cluster.web_url)
        poster.thread.start()
        wait_for(lambda: len(poster.accepted) >= 200, 60, "200 accepted messages")
        server.send_signal(signal.SIGKILL)
        server.wait()
        refused = poster.refused
        wait_for(lambda: poster.refused > refused + 5, 30, "the webhook refusing while Redis is down")
        accepted_during_outage = len(poster.accepted)
        server = start_redis(port, tmp_path)
        wait_for(lambda: len(poster.accepted) >= accepted_during_outage + 200, 60, "200 more after the restart")
        poster.stop.set()
        poster.thread.join()
        accepted = set(poster.accepted)

        def all_handled() -> bool:
            return accepted <= {row["id"] for row in read_log(client, private.prefix) if row["ev"] == "exit"}

        wait_for(all_handled, 120, "every accepted message handled")
        assert poster.refused > 0
    finally:
        if poster:
            poster.stop.set()
        cluster.stop()
        server.kill()
        server.wait()


def test_postgres_cut_off_for_10_seconds(settings, store, r, tmp_path):
    """With PostgreSQL unreachable for 10 s, messages are still handled; afterwards every message has
    exactly one history row, done."""
    target = conninfo_to_dict(settings.database_url)
    proxy = TcpProxy(target.get("host", "127.0.0.1"), int(target.get("port", 5432)))
    through_proxy = make_conninfo(settings.database_url, host="127.0.0.1", port=str(proxy.port))
    cluster = Cluster(settings.model_copy(update={"database_url": through_proxy}), tmp_path)
    try:
        cluster.start_all()
        ids = []
        for start in (0, 1000):  # DRIP_MAX_BATCH is 1,000 a request
            answer = httpx.post(cluster.web_url + "/enqueue", json=[
                {"queue": f"p{n % 20}", "payload": {"sleep": 0.01}} for n in range(start, start + 1000)])
            ids += [a["id"] for a in answer.json()]
        wait_for(lambda: r.llen(log_key(settings.prefix)) >= 200, 60, "handling to be under way")
        proxy.cut()
        cut_at = time.monotonic()
        handled_at_cut = r.llen(log_key(settings.prefix))
        wait_for(lambda: r.llen(log_key(settings.prefix)) >= handled_at_cut + 200, 9, "handling to go on meanwhile")
        time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))  # the outage lasts 10 s
        proxy.restore()

        def history_complete() -> bool:
            with psycopg.connect(settings.database_url) as conn:
                return conn.execute(
                    "SELECT count(*) FROM sequential_queue WHERE id = ANY(%s) AND status = 'done' AND attempts = 1",
                    (ids,)).fetchone()[0] == len(ids)

        wait_for(history_complete, 120, "one done history row per message")
    finally:
        cluster.stop()
        proxy.close()
