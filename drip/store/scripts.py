"""The script runner: drip's Lua scripts, loaded from lua/ and run by name on Redis.

Every multi-step change to Redis is one script (`scripts.run("grant", keys, args)` runs
`lua/grant.lua`). A script is loaded as lua/prelude.lua (helpers every script may use)
followed by its own text, with the layout's names (`STATE.token`, ...) replaced by their
strings (drip.core.layout), so no field is spelled in two places. On a cluster each call
goes to the node serving its keys' slot (every script's keys share one); with
DRIP_REDIS_MIN_REPLICAS a writing call is followed by WAIT on its connection.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import hiredis
import redis
from redis.crc import key_slot

from drip.core.layout import lua_source
from drip.store.connection import REDIS_DOWN, NotReplicated


@cache
def lua(name: str) -> str:
    """The text Redis runs for lua/<name>.lua: its flags line (if any), the prelude, then the script."""
    folder = resources.files("drip.store").joinpath("lua")
    text = folder.joinpath(f"{name}.lua").read_text()
    flags = ""
    if text.startswith("#!"):
        flags, _, text = text.partition("\n")
        flags += "\n"
    return flags + lua_source(folder.joinpath("prelude.lua").read_text() + text)


class Script:
    """One script's text and SHA1 (computed here: registering costs no round trip)."""

    def __init__(self, name: str) -> None:
        self.text = lua(name)
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()
        self.writes = "no-writes" not in self.text.partition("\n")[0]


@cache
def script_named(name: str) -> Script:
    return Script(name)


def pack_call(script: Script, keys: Sequence, args: Sequence, wait: tuple | None) -> bytes:
    command = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
    return command + hiredis.pack_command(("WAIT", *wait)) if wait and script.writes else command


class Scripts:
    """Runs scripts on a sync client (standalone or cluster), each thread on connections of its own.

    Scripts run on the calling thread's own connection to the node they go to, not through
    redis-py's command path: that path (pool checkout and release, retry wrapper, argument
    checks, re-packing each argument) cost ~65 us of CPU per call here against ~55 us for the
    round trip itself, and a drain makes one or two script calls per step. Commands are packed
    by hiredis, as redis-py itself does when hiredis is installed. Nothing is retried behind the
    caller's back either: a script that writes must not run twice because a reply was lost;
    callers see REDIS_DOWN and decide (the connection reconnects on its next use). A call a
    cluster node answers MOVED for did not run: the slots are read again and it is sent on.
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, *, min_replicas: int = 0,
                 replica_timeout_ms: int = 1000) -> None:
        self.client = client
        self.cluster = isinstance(client, redis.RedisCluster)
        self.wait = (min_replicas, replica_timeout_ms) if min_replicas else None
        self._local = threading.local()
        self._stale_slots = False

    def run(self, name: str, keys: Sequence, args: Sequence) -> Any:
        """Run one script once; its reply. One round trip."""
        return self.run_many(name, [(keys, args)])[0]

    def run_many(self, name: str, calls: Sequence[tuple[Sequence, Sequence]], *, raise_errors: bool = True) -> list:
        """Run one script once per (keys, args), in one round trip per node; their replies in order (a
        call's error raised, or returned in its place with `raise_errors` false). Redis lost its scripts
        (a restart, SCRIPT FLUSH)? Then no call ran: load it and send again."""
        script = script_named(name)
        replies: list = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(3):  # a MOVED reply (slots moved since we read them) is sent on, twice at most
            by_node = defaultdict(list)
            for index in todo:
                by_node[self._node(calls[index][0])].append(index)
            try:
                for node in by_node:
                    self._settle(node)
                answers = self._exchange(script, {node: [calls[i] for i in group] for node, group in by_node.items()})
            except REDIS_DOWN:
                self._stale_slots = self.cluster
                raise
            todo = []
            for node, group in by_node.items():
                for index, reply in zip(group, answers[node], strict=True):
                    if isinstance(reply, redis.exceptions.MovedError | redis.exceptions.AskError):
                        self._stale_slots, todo = True, [*todo, index]
                    replies[index] = reply
            if not todo:
                break
        for reply in replies:
            if isinstance(reply, Exception) and (raise_errors or not isinstance(reply, redis.exceptions.ResponseError)):
                raise reply
        return replies

    def send(self, name: str, keys: Sequence, args: Sequence) -> None:
        """Write one call of an idempotent script to this thread's connection without waiting for its
        reply, which this thread's next call to that node reads (and raises if it was an error). Once
        this returns, the call is in Redis's hands: with TCP_NODELAY the bytes left with the write, so
        even a SIGKILL of this process right after cannot take it back. If the connection breaks before
        its reply is read, the call is sent again, in order, before anything else: hence idempotent
        scripts only. With DRIP_REDIS_MIN_REPLICAS the call waits for its replicas instead (a write a
        failover could lose is not in Redis's hands yet)."""
        if self.wait:
            self.run(name, keys, args)
            return
        node = self._node(keys)
        self._pending(node).append((name, keys, args))
        try:
            self._settle_if_broken(node)
            self._connection(node).send_packed_command([pack_call(script_named(name), keys, args, None)])
        except REDIS_DOWN:
            self._broken().add(node)
            raise

    # --- connections, per thread and node ------------------------------------------------------

    def _node(self, keys: Sequence) -> str | None:
        """The node a call with these keys goes to (None on a standalone Redis)."""
        if not self.cluster:
            return None
        if self._stale_slots:
            self._stale_slots = False
            self.client.nodes_manager.initialize()
        node = self.client.nodes_manager.get_node_from_slot(key_slot(_bytes(keys[0])))
        return node.name

    def _connection(self, node: str | None) -> redis.connection.AbstractConnection:
        """This thread's connection to `node`, made by that node's pool with its settings."""
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(node)
        if conn is None:
            client = self.client if node is None else self.client.get_node(node_name=node).redis_connection
            conn = conns[node] = client.connection_pool.make_connection()
        return conn

    def _pending(self, node: str | None) -> list:
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = defaultdict(list)
        return pending[node]

    def _broken(self) -> set:
        broken = getattr(self._local, "broken", None)
        if broken is None:
            broken = self._local.broken = set()
        return broken

    def _exchange(self, script: Script, calls: dict[str | None, list]) -> dict[str | None, list]:
        """Send each node its calls, then read every node's replies: one round trip, nodes in parallel.
        A node whose replies could not all be read has its connection dropped (a reply left unread would
        be taken for the next call's), and counts as broken: what it was sent without waiting goes again."""
        answers: dict[str | None, list] = {}
        try:
            for node, node_calls in calls.items():
                self._connection(node).send_packed_command(
                    [b"".join(pack_call(script, k, a, self.wait) for k, a in node_calls)])
            for node, node_calls in calls.items():
                answers[node] = self._read(node, script, len(node_calls))
        except BaseException:
            for node in calls:
                if node not in answers:
                    self._drop(node)
            raise
        for node, node_calls in calls.items():
            if any(isinstance(r, redis.exceptions.NoScriptError) for r in answers[node]):
                # Redis lost its scripts (a restart, SCRIPT FLUSH): none of these ran. Load and send again.
                self._load(node, script)
                answers.update(self._exchange(script, {node: node_calls}))
        return answers

    def _drop(self, node: str | None) -> None:
        conns = getattr(self._local, "conns", {})
        if node in conns:
            conns[node].disconnect()
        self._broken().add(node)

    def _read(self, node: str | None, script: Script, count: int) -> list:
        conn = self._connection(node)
        replies: list = []
        for _ in range(count):
            try:
                replies.append(conn.read_response())
            except redis.exceptions.ResponseError as exc:  # this call's error; the next replies still follow
                replies.append(exc)
                if self.wait and script.writes:
                    try:
                        conn.read_response()  # its WAIT (refused too, if the call was: e.g. MOVED)
                    except redis.exceptions.ResponseError:
                        pass
                continue
            if self.wait and script.writes:
                try:
                    confirmed = conn.read_response()
                except redis.exceptions.ResponseError as exc:  # e.g. the node turned replica meanwhile
                    replies[-1] = NotReplicated(f"the write's WAIT was refused: {exc}")
                    continue
                if confirmed < self.wait[0]:
                    replies[-1] = NotReplicated(
                        f"{confirmed} of {self.wait[0]} replicas confirmed a write within {self.wait[1]} ms")
        return replies

    def _load(self, node: str | None, script: Script) -> None:
        client = self.client if node is None else self.client.get_node(node_name=node).redis_connection
        client.script_load(script.text)

    def _settle_if_broken(self, node: str | None) -> None:
        """After a broken connection, send again what was sent without a reply (all but the newest)."""
        if node in self._broken():
            newest = self._pending(node).pop()
            self._settle(node)
            self._pending(node).append(newest)

    def _settle(self, node: str | None) -> None:
        """Read the replies of the calls this thread sent `node` without waiting, in order (sent long enough
        ago, they wait in the socket already), so they stay before whatever this thread sends next; after
        a broken connection, send them again first (they are idempotent)."""
        sent = self._pending(node)
        if not sent:
            self._broken().discard(node)
            return
        failure: Exception | None = None
        again = sent  # after a broken connection, send everything again
        if node not in self._broken():
            replies = []
            for _ in sent:
                try:
                    replies.append(self._connection(node).read_response())
                except redis.exceptions.ResponseError as exc:  # read every reply before acting on any
                    replies.append(exc)
                except BaseException:
                    self._drop(node)  # unread replies: the connection goes, the calls are sent again later
                    raise
            lost = [i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)]
            # A call Redis had no script for did not run, and the calls after it may have found the queue
            # not as they expected: load the scripts and send them again, in order, from the first.
            again = sent[lost[0]:] if lost else []
            failure = next((r for r in replies[:lost[0] if lost else None] if isinstance(r, Exception)), None)
            for name in {name for name, _, _ in again}:
                self._load(node, script_named(name))
        for name, keys, args in list(again):
            reply = self._exchange(script_named(name), {node: [(keys, args)]})[node][0]
            failure = failure or (reply if isinstance(reply, Exception) else None)
        sent.clear()
        self._broken().discard(node)
        if failure is not None:
            raise failure


def _bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()
