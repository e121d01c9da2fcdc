"""The renewer keeps a worker process's leases alive: one thread renews every lease its
drains hold, every third of the TTL, together with the process's heartbeat. It also keeps
the process's busy threads as the supervisor counts them.

Renewal lives here rather than in each drain so a handler that runs longer than
the TTL keeps its lease without the drain doing anything; a lease that turns out
lost is flagged, and its drain stops at its next step (its acks would be refused
anyway: every script checks the token).

A thread's busy and idle marks are single writes; when one fails (Redis away, a failover),
the mark in Redis is wrong until corrected, and a pool whose threads all count busy is
granted nothing. The renewer knows which threads are busy, so its next beat corrects them.

A beat that comes late (the process or its machine stalled: a paused VM, CPU starvation, a
SIGSTOP) is logged as `renewal_late`: past the TTL the supervisor may have reclaimed the
leases, and their messages in hand run again elsewhere with their attempt counted.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from drip.core import logs
from drip.store.clock import RedisClock
from drip.store.connection import REDIS_DOWN
from drip.store.stores import Store

log = logs.get("drip.renewer")


def worker_member(threads: int) -> str:
    """How this process appears in the worker registry: host:pid:threads (threads = its slots)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threads}"


class Renewer:
    def __init__(self, store: Store, *, ttl_ms: int, member: str, clock: RedisClock | None = None) -> None:
        self.store = store
        self.ttl_ms = ttl_ms
        self.member = member
        self.clock = clock
        # Keyed by (queue, token): a stale grant of a queue this process holds (a broker's redelivery
        # after another process died) must not replace, nor drop, the live holder's lease.
        self._held: dict[tuple[str, str], threading.Event] = {}
        self._busy: set[str] = set()  # this process's threads running a drain ("member/n")
        self._correct_busy = False  # a busy or idle mark failed: the next beat states them all
        self._busy_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, queue: str, token: str) -> threading.Event:
        """Start renewing a lease; the returned event is set if the lease is lost."""
        lost = threading.Event()
        with self._lock:
            self._held[(queue, token)] = lost
        return lost

    def drop(self, queue: str, token: str) -> None:
        with self._lock:
            self._held.pop((queue, token), None)

    def busy(self, thread: str) -> None:
        """The thread runs a drain now (raises when Redis is away: the drain cannot run either)."""
        with self._busy_lock:  # held across the write: a correcting beat never sees it half done
            self._busy.add(thread)
            try:
                self.store.workers.busy(thread)
            except REDIS_DOWN:
                self._correct_busy = True
                raise

    def idle(self, thread: str) -> None:
        """The thread goes back to the broker; when Redis cannot be told now, the next beat tells it."""
        with self._busy_lock:
            self._busy.discard(thread)
            try:
                self.store.workers.idle(thread)
            except REDIS_DOWN:
                self._correct_busy = True

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="drip-renewer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and leave the worker registry (the supervisor stops counting our slots)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        try:
            self.store.workers.leave(self.member)
        except REDIS_DOWN:
            pass  # the heartbeat expires by itself

    def held(self) -> set[str]:
        """The queues this process's drains hold now."""
        with self._lock:
            return {queue for queue, _token in self._held}

    def beat(self) -> None:
        """One round: heartbeat, re-read Redis's clock, then renew every held lease in a single round trip."""
        if self._correct_busy:
            with self._busy_lock:
                self.store.workers.heartbeat(self.member, self.ttl_ms, sorted(self._busy))
                self._correct_busy = False
        else:
            self.store.workers.heartbeat(self.member, self.ttl_ms)
        if self.clock is not None:
            self.clock.sync(self.store.client)
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        renewed = self.store.leases.renew([lease for lease, _ in held], self.ttl_ms)
        for ((queue, _token), lost), ok in zip(held, renewed, strict=True):
            if not ok:
                log.warning("lease_lost", queue=queue, reason="renewal refused")
                lost.set()

    def _run(self) -> None:
        every_s = self.ttl_ms / 3000
        last = time.monotonic()
        while not self._stop.wait(every_s):
            now = time.monotonic()
            if now - last > 2 * every_s:  # a beat was missed: the leases went two thirds of their TTL unrenewed
                log.warning("renewal_late", since_ms=round((now - last) * 1000), ttl_ms=self.ttl_ms,
                            leases=len(self._held))
            last = now
            try:
                self.beat()
            except REDIS_DOWN as exc:
                log.warning("redis_unavailable", during="lease renewal", error=str(exc))
