"""Each script's reply pinned to its Python decoder, against real Redis: change one side alone and a test fails.

Also: every script loads with the data layout's names resolved, and every script that
uses them says so in its header.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from drip.core import layout
from drip.core.keys import shard_of
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store.leases import LOST, Released, Verdict, taken
from drip.store.queues import Cancel
from drip.store.scripts import lua
from tests.helpers import ack_of, lease, put, take, wait_for

LUA = resources.files("drip.store").joinpath("lua")
SCRIPTS = sorted(f.name.removesuffix(".lua") for f in LUA.iterdir() if f.name.endswith(".lua") and f.name != "prelude.lua")
_LAYOUT_NAME = re.compile(r"\b(STATE|ENTRY|EVENT|KIND|DEAD|BUCKET|BUDGET|WAKE|REPLY)\.[a-z_]+")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_loads_with_its_layout_names_resolved(name):
    """A script loads whole: flags line first, the prelude, no layout name left unresolved."""
    text = lua(name)
    assert not _LAYOUT_NAME.search(text.split("\n", 1)[1] if text.startswith("#!") else text)
    assert "local function now_ms()" in text


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_that_uses_the_layout_says_so_in_its_header(name):
    """Each Lua file that names fields or wake codes refers to drip/core/layout.py in its header."""
    source = LUA.joinpath(f"{name}.lua").read_text()
    header = "".join(line for line in source.splitlines() if line.startswith("--"))
    assert not _LAYOUT_NAME.search(source) or "drip/core/layout.py" in header


def test_an_unknown_layout_name_fails_the_load():
    """A field the layout does not name cannot slip into a script."""
    with pytest.raises(KeyError, match="STATE.nonsense"):
        layout.lua_source('redis.call("HGET", KEYS[1], STATE.nonsense)')


def test_advance_reply_is_what_its_decoder_reads(store):
    """advance.lua's "messages" reply, per message layout.TAKEN, decodes to the message that was stored."""
    (stored,) = store.queues.enqueue([Inbound(new_id(), "q", b'{"x":1}')])
    assert lease(store, "q")
    reply = store.scripts.run("advance", *_advance_call(store, "q", "tok", take=1))
    assert reply[0].decode() == layout.Reply.messages and len(reply) == 1 + len(layout.TAKEN)
    (got,) = taken("q", reply)
    assert (got.message.id, got.message.payload_json, got.message.attempt, got.message.run_at_ms) == (
        stored.id, b'{"x":1}', 1, stored.run_at_ms)
    assert got.entry_id.startswith(b"1") and got.message.enqueued_at_ms <= got.message.run_at_ms


def test_advance_release_and_lost_replies_decode(store):
    """The two other shapes: released with the count left, and lost for a stale token."""
    put(store, "q", 1)
    assert lease(store, "q")
    assert store.leases.advance("q", "tok", worker="w", ttl_ms=5000, ack=None, take=0) == Released(1)
    assert store.leases.advance("q", "stale", worker="w", ttl_ms=5000, ack=None, take=1) is LOST


def test_enqueue_reply_is_what_its_decoder_reads(store):
    """enqueue.lua answers, per message layout.STORED, the id, the run_at and the duplicate flag."""
    first, again = store.queues.enqueue([Inbound(new_id(), "q", b"1", Timing("delay", 60_000), dedup_id="d"),
                                         Inbound(new_id(), "q", b"2", dedup_id="d")])
    assert len(layout.STORED) == 3
    assert not first.duplicate and again.duplicate and again.id == first.id and again.run_at_ms == first.run_at_ms
    assert first.run_at_ms >= store.redis_now_ms() + 59_000


def test_fail_replies_decode_to_verdicts(store):
    """fail.lua's reply words are the Verdicts: retry with the attempts, then dead, then lost."""
    put(store, "q", 1)
    assert lease(store, "q", "a")
    step = take(store, "q", "a")
    assert store.leases.fail(step, "a", error="x", max_attempts=2, retry_delay_ms=0) == (Verdict.RETRY, 1)
    assert lease(store, "q", "b")
    step = take(store, "q", "b")
    assert store.leases.fail(step, "stale", error="x", max_attempts=2, retry_delay_ms=0) == (Verdict.LOST, 0)
    assert store.leases.fail(step, "b", error="x", max_attempts=2, retry_delay_ms=0) == (Verdict.DEAD, 2)


def test_heads_reply_is_more_then_the_oldest_queues(store):
    """heads.lua answers {more, queue...}: claim_next leases the first and reports whether others waited."""
    put(store, "older", 1)
    before = store.redis_now_ms()
    wait_for(lambda: store.redis_now_ms() > before, 5, "Redis's clock to tick (distinct places in line)")
    put(store, "newer", 1)
    claim = store.leases.claim_next(5000, worker="w", take=1)
    assert claim.queue == "older" and claim.more
    assert store.leases.claim_next(5000, worker="w", take=1).more is False


def test_grant_and_reclaim_replies_are_the_queues(store, r):
    """grant.lua and reclaim.lua answer the queues they changed, which the stores return as names."""
    put(store, "q", 1)
    assert store.leases.grant({shard_of("q"): [("q", "t")]}, 5000) == [("q", "t")]
    r.zadd(store.keys.leases(shard_of("q")), {"q": 0})
    assert store.leases.reclaim_expired() == ["q"]


def test_cancel_reply_decodes_to_the_outcome(store):
    """cancel.lua's 1/0 and the reads before it become Cancel outcomes."""
    (later,) = store.queues.enqueue([Inbound(new_id(), "q", b"1", Timing("delay", 60_000))])
    assert store.queues.cancel(later.id) == (Cancel.CANCELLED, "q")
    assert store.queues.cancel(later.id) == (Cancel.ALREADY_CANCELLED, None)
    assert store.queues.cancel(new_id()) == (Cancel.NOT_SCHEDULED, None)


def test_promote_reply_is_the_count_moved_and_the_id_is_remembered(store):
    """promote.lua answers how many it moved; a promoted id then cancels as a conflict, not an unknown."""
    (due,) = store.queues.enqueue([Inbound(new_id(), "q", b"1", Timing("delay", 1))])
    queues = wait_for(lambda: store.queues.due_queues(10), 5, "the message to fall due")
    assert store.queues.promote(queues, 10) == [1]
    assert store.queues.cancel(due.id) == (Cancel.PROMOTED, None)


def test_acks_of_a_batch_are_counted_as_done_events(store, r):
    """advance.lua writes one done event per acked message, with the layout's event fields."""
    ids = put(store, "q", 2)
    assert lease(store, "q")
    steps = store.leases.advance("q", "tok", worker="w", ttl_ms=5000, ack=None, take=2)
    store.leases.ack("q", "tok", ack_of(steps[0]), steps[1].entry_id)
    store.leases.advance("q", "tok", worker="w", ttl_ms=5000, ack=ack_of(steps[1]), take=0)
    done = [f for _, f in r.xrange(store.keys.events(shard_of("q")))
            if f[layout.Event.kind.encode()] == layout.Kind.done.encode()]
    assert [f[layout.Event.id.encode()].decode() for f in done] == ids
    assert all(layout.Event.started.encode() in f and layout.Event.finished.encode() in f for f in done)


def _advance_call(store, queue: str, token: str, *, take: int) -> tuple[list, list]:
    k, shard = store.keys, shard_of(queue)
    return ([k.state(queue), k.stream(queue), k.leases(shard), k.ready(shard), k.events(shard), k.replays(queue),
             k.in_transit(shard), k.acks(queue)], [queue, token, 5000, "w", take, k.wake_channel(), "0"])
