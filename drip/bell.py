"""The line bell of one worker process: tells its standing drains that queues got in line.

A drain that has finished its queue stays on its thread for a while, standing by
(drip.drain.drain_and_claim). Rather than poll Redis, standing drains wait on this
bell; one listener thread per process turns the scripts' wake-ups (pub/sub) into
rings. "q:<queue>" (one queue got in line) wakes one standing drain with that queue's
name, which it then tries to lease directly; "q" (several), "p" (promoted) and "x"
(reclaimed) wake one or all of them to look at the whole line. The woken drain leases
the queue itself, which spares it the supervisor's survey and grant and the broker's
round trips.

A ring is a hint, never the only way work is found: rings that come while every
drain is busy are kept (up to one per standing drain; beyond that, the next drain
looks at the whole line), and a drain that finds nothing simply waits again.
Wake-ups lost while Redis is away cost at most the waits' timeout.
"""

from __future__ import annotations

import threading
from collections import deque

import redis

from drip import logs
from drip.leases import Leases
from drip.scripts import REDIS_DOWN

log = logs.get("drip.bell")

#: What a ring asks of the drain it wakes when it names no queue: look at the whole line.
LOOK = ""


class LineBell:
    """A counting signal between the listener and the drains standing by in one process."""

    def __init__(self, store: Leases) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._rings: deque[str] = deque()  # queue names, or LOOK
        self._standing = 0

    def stand(self) -> None:
        """A drain may stand by on this thread: rings are now kept for it."""
        with self._cond:
            self._standing += 1

    def sit(self) -> None:
        """The drain no longer stands by."""
        with self._cond:
            self._standing -= 1
            self._trim()

    def ring(self, queue: str = LOOK, everyone: bool = False) -> None:
        """Wake a standing drain for `queue` (or to look at the line), or every one of them."""
        with self._cond:
            if everyone:
                self._rings = deque([LOOK] * self._standing)
            else:
                self._rings.append(queue)
                self._trim()
            self._cond.notify(len(self._rings))

    def _trim(self) -> None:
        """Keep at most one ring per standing drain; dropped names become one look at the line."""
        if len(self._rings) > self._standing:
            while len(self._rings) > max(self._standing - 1, 0):
                self._rings.popleft()
            if self._standing:
                self._rings.appendleft(LOOK)

    def wait(self, timeout_s: float) -> str | None:
        """Wait up to `timeout_s` for a ring; returns what it asks (a queue's name, or LOOK), or None."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._rings, timeout_s):
                return None
            return self._rings.popleft()

    def listen(self, stopping: threading.Event) -> threading.Thread:
        """Start the thread that rings on the wake-ups that put queues in line, until `stopping`."""

        def run() -> None:
            retry_s = 0.1
            pubsub: redis.client.PubSub | None = None
            while not stopping.is_set():
                try:
                    if pubsub is None:
                        pubsub = self._store.subscribe_wake()
                        self.ring(everyone=True)  # whatever was said while we were not listening
                    message = pubsub.get_message(timeout=0.5)
                    retry_s = 0.1
                    if message is None:
                        continue
                    data = message["data"]
                    if data.startswith(b"q:"):
                        self.ring(data[2:].decode())
                    elif data == b"q":
                        self.ring()
                    elif data in (b"p", b"x"):
                        self.ring(everyone=True)
                except REDIS_DOWN as exc:
                    log.warning("redis_unavailable", during="listening for queues in line", error=str(exc))
                    _close(pubsub)
                    pubsub = None
                    stopping.wait(retry_s)
                    retry_s = min(retry_s * 2, 5.0)
            _close(pubsub)
            self.ring(everyone=True)  # standing drains see the process stopping now, not at their timeout

        thread = threading.Thread(target=run, name="drip-bell", daemon=True)
        thread.start()
        return thread


def _close(pubsub: redis.client.PubSub | None) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except REDIS_DOWN:
            pass
