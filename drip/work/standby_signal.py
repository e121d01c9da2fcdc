"""The standby signal of one worker process: tells its drains standing by that queues got in line.

A drain that has finished its queue stays on its thread for a while, standing by
(drip.work.standby). Rather than poll Redis, drains standing by wait on this signal;
one listener thread per process turns the scripts' wake-ups (pub/sub) into signals.
A wake-up naming one queue (Wake.line_one) signals one drain with that queue's name,
which it then tries to lease directly; Wake.line (several), Wake.promoted and
Wake.reclaimed signal one or all of them to look at the whole line. The signalled drain
leases the queue itself, which spares it the supervisor's survey and grant and the
broker's round trips.

A signal is a hint, never the only way work is found: signals that come while every
drain is busy are kept (up to one per drain standing by; beyond that, the next drain
looks at the whole line), and a drain that finds nothing simply waits again.
Wake-ups lost while Redis is away cost at most the waits' timeout.
"""

from __future__ import annotations

import threading
from collections import deque

import redis

from drip.core import logs
from drip.core.layout import Wake
from drip.core.retry import run_until
from drip.store.connection import REDIS_DOWN
from drip.store.workers import Workers, close_quietly

log = logs.get("drip.standby")

#: What a signal asks of the drain it wakes when it names no queue: look at the whole line.
LOOK = ""

_LINE_ONE, _LINE = Wake.line_one.encode(), Wake.line.encode()
_LOOK_ALL = {Wake.promoted.encode(), Wake.reclaimed.encode()}


class StandbySignal:
    """A counting signal between the listener and the drains standing by in one process."""

    def __init__(self, workers: Workers | None) -> None:
        self._workers = workers
        self._cond = threading.Condition()
        self._signals: deque[str] = deque()  # queue names, or LOOK
        self._standing = 0

    def stand_by(self) -> None:
        """A drain may stand by on this thread: signals are now kept for it."""
        with self._cond:
            self._standing += 1

    def stop_standing(self) -> None:
        """The drain no longer stands by."""
        with self._cond:
            self._standing -= 1
            self._trim()

    def signal(self, queue: str = LOOK, everyone: bool = False) -> None:
        """Wake a drain standing by for `queue` (or to look at the line), or every one of them."""
        with self._cond:
            if everyone:
                self._signals = deque([LOOK] * self._standing)
            else:
                self._signals.append(queue)
                self._trim()
            self._cond.notify(len(self._signals))

    def _trim(self) -> None:
        """Keep at most one signal per drain standing by; dropped names become one look at the line."""
        if len(self._signals) > self._standing:
            while len(self._signals) > max(self._standing - 1, 0):
                self._signals.popleft()
            if self._standing:
                self._signals.appendleft(LOOK)

    def wait(self, timeout_s: float) -> str | None:
        """Wait up to `timeout_s` for a signal; returns what it asks (a queue's name, or LOOK), or None."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._signals, timeout_s):
                return None
            return self._signals.popleft()

    def listen(self, stopping: threading.Event) -> threading.Thread:
        """Start the thread that signals on the wake-ups that put queues in line, until `stopping`."""
        listener = _Listener(self, self._workers)

        def run() -> None:
            run_until(stopping, listener.step, errors=REDIS_DOWN, recover=listener.recover)
            listener.close()
            self.signal(everyone=True)  # drains standing by see the process stopping now, not at their timeout

        thread = threading.Thread(target=run, name="drip-standby-signal", daemon=True)
        thread.start()
        return thread


class _Listener:
    """Turns wake-ups into signals, on a subscription made again after each outage."""

    def __init__(self, standby: StandbySignal, workers: Workers) -> None:
        self.standby = standby
        self.workers = workers
        self.pubsub: redis.client.PubSub | None = None

    def step(self) -> None:
        if self.pubsub is None:
            self.pubsub = self.workers.subscribe_wake()
            self.standby.signal(everyone=True)  # whatever was said while we were not listening
        message = self.pubsub.get_message(timeout=0.5)
        if message is None:
            return
        data = message["data"]
        if data.startswith(_LINE_ONE):
            self.standby.signal(data[len(_LINE_ONE):].decode())
        elif data == _LINE:
            self.standby.signal()
        elif data in _LOOK_ALL:
            self.standby.signal(everyone=True)

    def recover(self, exc: BaseException, wait_s: float) -> None:
        log.warning("redis_unavailable", during="listening for queues in line", error=str(exc), retry_in_s=wait_s)
        self.close()

    def close(self) -> None:
        close_quietly(self.pubsub)
        self.pubsub = None
