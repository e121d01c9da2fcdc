"""Dead letters and paused queues through the `drip` command, in-process, against real Redis."""

from __future__ import annotations

import io
import json
import sys

import pytest

from drip.cli import main as cli
from drip.core.keys import shard_of
from drip.core.messages import Inbound, new_id
from drip.store.stores import Store
from tests.helpers import advance, lease, take


@pytest.fixture
def drip_cli(settings, monkeypatch, capsys):
    """Run `drip ...` in this process with the test's settings; returns (exit code, stdout, stderr)."""
    for name in ("prefix", "redis_url", "database_url"):
        monkeypatch.setenv(f"DRIP_{name.upper()}", str(getattr(settings, name)))

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def kill(store: Store, queue: str, n: int) -> list[str]:
    """Put n messages in `queue` and send each to the dead letters (one attempt allowed)."""
    ids = [a.id for a in store.queues.enqueue([Inbound(new_id(), queue, b'{"n":%d}' % i) for i in range(n)])]
    for i in range(n):
        assert lease(store, queue, f"t{i}")
        step = take(store, queue, f"t{i}")
        assert store.leases.fail(step, f"t{i}", error=f"boom {i}", max_attempts=1, retry_delay_ms=0)[0] == "dead"
        advance(store, queue, f"t{i}", worker="w", ttl_ms=1000, ack=None, take=False)
    return ids


def stream_ids(store: Store, queue: str) -> list[str]:
    return [f[b"id"].decode() for _, f in store.client.xrange(store.keys.stream(queue))]


def test_dead_list_and_show(store, drip_cli):
    """`drip dead list` shows every dead letter; --queue filters; `show` prints one with its payload."""
    a = kill(store, "qa", 2)
    b = kill(store, "qb", 1)
    code, out, _ = drip_cli("dead", "list")
    assert code == 0 and all(i in out for i in a + b) and "boom 1" in out
    code, out, _ = drip_cli("dead", "list", "--queue", "qb", "--json")
    assert [d["id"] for d in json.loads(out)] == b
    code, out, _ = drip_cli("dead", "show", a[1])
    shown = json.loads(out)
    assert (shown["queue"], shown["attempts"], shown["error"], shown["payload"]) == ("qa", 1, "boom 1", {"n": 1})


def test_replay_to_the_head_goes_before_waiting_messages(store, drip_cli):
    """Replayed to the head (the default), dead letters are handed out before the queue's waiting messages."""
    dead = kill(store, "q", 2)
    waiting = [a.id for a in store.queues.enqueue([Inbound(new_id(), "q", b"1")])]
    code, out, _ = drip_cli("dead", "replay", "--queue", "q")
    assert code == 0 and "replayed 2" in out
    assert lease(store, "q", "next")
    order = []
    ack = None
    while (step := advance(store, "q", "next", worker="w", ttl_ms=5000, ack=ack, take=True)).__class__.__name__ == "Taken":
        order.append((step.message.id, step.message.attempt))
        from drip.store.leases import Ack

        ack = Ack(step.entry_id, step.message.id, 1, 2)
    assert order == [(dead[0], 1), (dead[1], 1), (waiting[0], 1)]
    assert store.dead.list() == []


def test_replay_to_the_tail_and_by_id(store, drip_cli):
    """--tail appends after the waiting messages; an id replays just that one; an unknown id is an error."""
    dead = kill(store, "q", 2)
    waiting = [a.id for a in store.queues.enqueue([Inbound(new_id(), "q", b"1")])]
    code, _, _ = drip_cli("dead", "replay", dead[1], "--tail")
    assert code == 0 and stream_ids(store, "q") == waiting + [dead[1]]
    code, _, err = drip_cli("dead", "replay", new_id())
    assert code == 1 and err.startswith("drip: error: no dead letter")


def test_purge(store, drip_cli):
    """`drip dead purge` deletes dead letters (one, a queue's, or all) for good."""
    a = kill(store, "qa", 2)
    kill(store, "qb", 1)
    assert drip_cli("dead", "purge", a[0])[1].startswith("purged 1")
    assert drip_cli("dead", "purge", "--all")[1].startswith("purged 2")
    assert store.dead.list() == []


def test_pause_and_resume(store, drip_cli):
    """A paused queue leaves the line and is not granted; resumed, it is back in line."""
    store.queues.enqueue([Inbound(new_id(), "q", b"1")])
    ready = store.keys.ready(shard_of("q"))
    assert drip_cli("pause", "q")[1].startswith("paused q")
    assert store.client.zscore(ready, "q") is None and not lease(store, "q", "t")
    store.queues.enqueue([Inbound(new_id(), "q", b"2")])
    assert store.client.zscore(ready, "q") is None, "a new message must not put a paused queue in line"
    code, out, _ = drip_cli("status")
    queues = out.split("\nQUEUE ", 1)[1]  # the queue table (the lateness table above reads the shared history)
    assert "PAUSED" in next(line for line in queues.splitlines() if line.startswith("q "))
    assert drip_cli("resume", "q")[1].startswith("resumed q")
    assert lease(store, "q", "t")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("task", ["replay", "purge"])
def test_long_replays_and_purges_draw_a_progress_bar_on_a_terminal(store, drip_cli, monkeypatch, task):
    """More than BAR_FROM letters draw a progress bar on stderr when it is a terminal."""
    from drip.cli import dead as dead_cli
    from drip.store import dead

    monkeypatch.setattr(dead, "CHUNK", 2)
    monkeypatch.setattr(dead_cli, "BAR_FROM", 3)
    kill(store, "q", 5)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out, _ = drip_cli("dead", task, "--all")
    assert code == 0 and out.startswith({"replay": "replayed 5", "purge": "purged 5"}[task])
    assert {"replay": "replaying:", "purge": "purging:"}[task] in terminal.getvalue() and "| 0/5 [" in terminal.getvalue()


def test_no_progress_bar_when_stderr_is_not_a_terminal(store, drip_cli, monkeypatch):
    """In a pipe or a log (stderr not a terminal) a long replay prints no bar characters."""
    from drip.cli import dead as dead_cli
    from drip.store import dead

    monkeypatch.setattr(dead, "CHUNK", 2)
    monkeypatch.setattr(dead_cli, "BAR_FROM", 3)
    kill(store, "q", 5)
    code, out, err = drip_cli("dead", "replay", "--all")
    assert code == 0 and "replayed 5" in out
    # stderr has the action's log line (who replayed what), and no bar: tqdm draws with \r and its unit.
    assert "dead_letters_replayed" in err and "\r" not in err and " letters" not in err
