"""Failures with real processes: retries with backoff, dead letters and replay, poison messages, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import psycopg
import pytest

from tests.helpers import drip_env, wait_for
from tests.sample_handlers import read_log

pytestmark = pytest.mark.slow


def post(url: str, queue: str, payloads: list) -> list[str]:
    answer = httpx.post(url + "/enqueue", json=[{"queue": queue, "payload": p} for p in payloads])
    assert answer.status_code == 202, answer.text
    return [a["id"] for a in answer.json()]


def rows_of(r, prefix: str, message_id: str, kind: str) -> list[dict]:
    return [row for row in read_log(r, prefix) if row["id"] == message_id and row["ev"] == kind]


def history(database_url: str, message_id: str) -> tuple[str, int] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status, attempts FROM sequential_queue WHERE id = %s", (message_id,)).fetchone()


def worker_events(cluster, name: str) -> list[dict]:
    """The JSON log lines of the worker pool (its processes write to the same log file)."""
    lines = (cluster.folder / "worker.log").read_text().splitlines()
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            events.append(event)
    return events


def test_a_failing_message_dies_after_max_attempts_with_backoff_then_replay_completes_it(cluster, r, settings, store):
    """Always failing: dead after exactly DRIP_MAX_ATTEMPTS, each retry after its backoff; the queue moves on;
    replayed once the handler is fixed, it is handled."""
    fixed = f"{settings.prefix}:test:fixed"
    cluster.start_all(DRIP_MAX_ATTEMPTS="3", DRIP_BACKOFF_BASE_MS="200", DRIP_BACKOFF_MAX_MS="800")
    bad, good = post(cluster.web_url, "q", [{"fail_until": fixed}, {"n": 2}])
    wait_for(lambda: rows_of(r, settings.prefix, good, "exit"), 60, "the queue to move on past the dead message")
    enters = rows_of(r, settings.prefix, bad, "enter")
    exits = rows_of(r, settings.prefix, bad, "exit")
    assert [row["a"] for row in enters] == [1, 2, 3]
    retries = [e for e in worker_events(cluster, "message_retried") if e["message_id"] == bad]
    assert [e["attempt"] for e in retries] == [1, 2]
    for k, retry in enumerate(retries):
        # The next attempt starts no sooner than the failure plus the backoff that was logged for it.
        assert enters[k + 1]["t"] >= exits[k]["t"] + retry["backoff_ms"] * 1_000_000
    (letter,) = store.dead.list("q")
    assert (letter.id, letter.attempts) == (bad, 3) and "asked to fail" in letter.error
    wait_for(lambda: history(settings.database_url, bad) == ("dead", 3), 30, "history: dead, 3 attempts")

    r.set(fixed, 1)
    replay = subprocess.run([sys.executable, "-m", "drip", "dead", "replay", bad], env=drip_env(settings),
                            capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    wait_for(lambda: len(rows_of(r, settings.prefix, bad, "exit")) == 4, 30, "the replayed message handled")
    assert rows_of(r, settings.prefix, bad, "enter")[-1]["a"] == 1
    wait_for(lambda: history(settings.database_url, bad) == ("done", 1), 30, "history: done after the replay")


def test_a_handler_that_kills_its_process_is_dead_after_the_maximum(cluster, r, settings, store):
    """A poison message (its handler SIGKILLs the process): dead after DRIP_MAX_ATTEMPTS, not an endless loop."""
    cluster.start_all(DRIP_MAX_ATTEMPTS="2", DRIP_LEASE_TTL_MS="1000")
    poison, good = post(cluster.web_url, "q", [{"kill_self": True}, {"n": 2}])
    wait_for(lambda: rows_of(r, settings.prefix, good, "exit"), 90, "the message after the poison one")
    assert [row["a"] for row in rows_of(r, settings.prefix, poison, "enter")] == [1, 2]
    (letter,) = store.dead.list("q")
    assert letter.id == poison and letter.attempts == 2 and "process died" in letter.error
    wait_for(lambda: history(settings.database_url, poison) == ("dead", 2), 30, "history: dead, 2 attempts")


def test_sigterm_lets_a_slow_handler_finish_and_nothing_is_redelivered(cluster, r, settings):
    """SIGTERM to `drip worker` while a handler runs: it completes, is acked, and never runs again."""
    cluster.start_all()
    slow, = post(cluster.web_url, "q", [{"sleep": 2}])
    wait_for(lambda: rows_of(r, settings.prefix, slow, "enter"), 30, "the slow handler to start")
    pool = cluster.children["worker"]
    pool.send_signal(signal.SIGTERM)
    assert pool.wait(60) == 0
    assert len(rows_of(r, settings.prefix, slow, "exit")) == 1, "the handler must finish before the pool exits"
    cluster.start("worker2", "worker")
    after, = post(cluster.web_url, "q", [{"n": 2}])
    wait_for(lambda: rows_of(r, settings.prefix, after, "exit"), 30, "a message after the restart")
    assert len(rows_of(r, settings.prefix, slow, "enter")) == 1, "the slow message was handled again"
    wait_for(lambda: history(settings.database_url, slow) == ("done", 1), 30, "history: done, 1 attempt")
