"""The line bell of one worker process: tells its standing drains that a queue got in line.

A drain that has finished its queue stays on its thread for a while, standing by
(drip.drain.drain_and_claim). Rather than poll Redis, standing drains wait on this
bell; one listener thread per process turns the scripts' wake-ups (pub/sub) into
rings: a queue in line ("q") wakes one standing drain, promoted or reclaimed queues
("p", "x", possibly many) wake them all. The woken drain leases the queue itself,
which spares it the supervisor's survey and grant and the broker's round trips.

A ring is a hint, never the only way work is found: a ring that comes while every
drain is busy is kept (up to one per standing drain), and a drain that finds nothing
simply waits again. Wake-ups lost while Redis is away cost at most the waits' timeout.
"""

from __future__ import annotations

import threading

import redis

from drip import logs
from drip.leases import Leases
from drip.scripts import REDIS_DOWN

log = logs.get("drip.bell")

#: Wake-ups that put one queue in line, and those that may put many.
_ONE, _MANY = {b"q"}, {b"p", b"x"}


class LineBell:
    """A counting signal between the listener and the drains standing by in one process."""

    def __init__(self, store: Leases) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._rings = 0
        self._standing = 0

    def stand(self) -> None:
        """A drain may stand by on this thread: rings are now kept for it."""
        with self._cond:
            self._standing += 1

    def sit(self) -> None:
        """The drain no longer stands by."""
        with self._cond:
            self._standing -= 1
            self._rings = min(self._rings, self._standing)

    def ring(self, everyone: bool = False) -> None:
        with self._cond:
            self._rings = self._standing if everyone else min(self._rings + 1, self._standing)
            self._cond.notify(self._rings)

    def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for a ring; True if one came (and is now taken)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._rings > 0, timeout_s):
                return False
            self._rings -= 1
            return True

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
                    if message["data"] in _ONE:
                        self.ring()
                    elif message["data"] in _MANY:
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
