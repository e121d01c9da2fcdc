"""The operator actions the CLI and the console share, on real Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from drip.core.errors import Conflict, NotFound
from drip.core.keys import shard_of
from drip.core.messages import new_id
from drip.core.timing import Timing
from drip.operations import dead, messages, queues
from drip.work.recorder import Recorder
from tests.helpers import lease, put


def test_skip_head_dead_letters_the_head_and_the_next_is_in_line(store):
    """Skip head: the first message becomes a dead letter naming who skipped it; the second is in line."""
    first, second = put(store, "q", n=2)
    done = queues.skip_head(store, "q", by="operator:alice")
    assert done.count == 1 and first in done.text
    (letter,) = store.dead.list("q")
    assert (letter.id, letter.error) == (first, "skipped by operator:alice")
    assert store.client.zscore(store.keys.ready(shard_of("q")), "q") is not None
    assert [d.id for d in dead.chosen(store.dead, queue="q")] == [first]
    assert dead.replay(store.dead, [letter], to_head=True, by="test").count == 1
    assert store.dead.list("q") == [] and store.client.llen(store.keys.replays("q")) == 1 and second


def test_skip_head_refuses_while_a_lease_is_out_and_on_an_empty_queue(store):
    """A running handler's message is never taken from under it; an empty queue has nothing to skip."""
    put(store, "q")
    assert lease(store, "q")
    with pytest.raises(Conflict, match="held"):
        queues.skip_head(store, "q", by="test")
    with pytest.raises(NotFound):
        queues.skip_head(store, "empty", by="test")


def test_pause_and_resume_say_whether_they_changed_anything(store):
    """Pausing twice changes nothing the second time; resuming a queue that is not paused neither."""
    put(store, "q")
    assert queues.pause(store, "q", by="t").count == 1
    assert queues.pause(store, "q", by="t").count == 0
    assert queues.resume(store, "q", by="t").count == 1
    assert queues.resume(store, "q", by="t").count == 0


def test_show_finds_scheduled_ready_and_dead_messages(store, settings):
    """A scheduled message is `scheduled` with its run_at; a ready one `ready` at its position; a skipped one `dead`."""
    (later,) = put(store, "q", timing=Timing("delay", 600_000))
    a, b = put(store, "r", n=2)
    Recorder(store, settings.database_url).record_once()
    assert messages.show(store, settings.database_url, later)["status"] == "scheduled"
    shown = messages.show(store, settings.database_url, b)
    assert (shown["status"], shown["position"], shown["queue"]) == ("ready", 2, "r")
    queues.skip_head(store, "r", by="t")
    assert messages.show(store, settings.database_url, a)["status"] == "dead"
    with pytest.raises(NotFound):
        messages.show(store, settings.database_url, new_id())
