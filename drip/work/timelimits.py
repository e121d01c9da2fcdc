"""Handler time limits: a hung handler must not hold its queue forever.

At its limit (DRIP_HANDLER_TIMEOUT_S, or the route's timeout_s) a handler is interrupted
the way dramatiq's TimeLimit does it: HandlerTimedOut is raised in its thread, which
works whenever the handler runs Python code. A thread blocked inside C (a sleep, a read
without a timeout) cannot be interrupted from outside safely; if it is still running
after a grace period, the watcher books the attempt as failed itself ("timed out after
N s") and asks its process to recycle: the process stops taking work, lets its other
drains finish and release their queues, and exits so its pool starts a fresh one, as
Celery's hard time limit replaces the worker it kills.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drip.core import logs

log = logs.get("drip.timelimits")


def grace_s(limit_s: float) -> float:
    """How long a handler past its limit may go on before its process is recycled."""
    return min(30.0, max(1.0, limit_s))


class HandlerTimedOut(BaseException):
    """Raised in a handler's thread at its limit. Not an Exception, so a handler's own
    `except Exception` cannot swallow it."""

    def __init__(self, limit_s: float | None = None) -> None:  # raised by type from another thread: no args
        super().__init__("timed out" if limit_s is None else f"timed out after {limit_s:g} s")


@dataclass
class _Running:
    thread_id: int
    limit_s: float
    interrupt_at: float  # monotonic
    stuck_at: float
    on_stuck: Callable[[], None]
    interrupted: bool = False
    stuck: bool = False


class TimeLimits:
    """The handlers running in one process and their limits, watched by one thread."""

    def __init__(self) -> None:
        self._running: dict[int, _Running] = {}
        self._cond = threading.Condition()
        self._wakes_at = 0.0  # monotonic: when the watcher looks next, unless woken

    def call(self, handler: Callable[[Any], object], message: Any, limit_s: float,
             on_stuck: Callable[[], None]) -> bool:
        """Run `handler(message)` under its limit; raises HandlerTimedOut at the limit. Returns whether
        the handler was given up on as stuck meanwhile (its attempt booked by `on_stuck`)."""
        now = time.monotonic()
        entry = _Running(threading.get_ident(), limit_s, now + limit_s, now + limit_s + grace_s(limit_s), on_stuck)
        with self._cond:
            self._running[entry.thread_id] = entry
            if entry.interrupt_at < self._wakes_at:
                # Only a limit shorter than the watcher's sleep wakes it: a notify per message would
                # hand the GIL to the watcher and back for every handler call.
                self._cond.notify()
        try:
            handler(message)
        except HandlerTimedOut:
            if not entry.stuck:
                raise
        finally:
            with self._cond:
                self._running.pop(entry.thread_id, None)
                if entry.interrupted:
                    _raise_in(entry.thread_id, None)  # an interrupt not yet delivered must not fire later
        return entry.stuck

    def stuck(self) -> int:
        """How many handlers of this process were given up on and still run."""
        with self._cond:
            return sum(1 for e in self._running.values() if e.stuck)

    def watch(self, stopping: threading.Event) -> threading.Thread:
        """Start the thread that interrupts handlers at their limit and gives up on stuck ones."""
        thread = threading.Thread(target=self._watch, args=(stopping,), name="drip-timelimits", daemon=True)
        thread.start()
        return thread

    def _watch(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            given_up = []
            with self._cond:
                now = time.monotonic()
                for entry in self._running.values():
                    if not entry.interrupted and now >= entry.interrupt_at:
                        entry.interrupted = True
                        _raise_in(entry.thread_id, HandlerTimedOut)
                    if not entry.stuck and now >= entry.stuck_at:
                        entry.stuck = True
                        given_up.append(entry)
                deadlines = [e.stuck_at if e.interrupted else e.interrupt_at for e in self._running.values()
                             if not e.stuck]
                if not given_up:
                    wait_s = min(0.5, max(0.0, min(deadlines, default=now + 0.5) - now))
                    self._wakes_at = now + wait_s
                    self._cond.wait(wait_s)
            for entry in given_up:
                log.error("handler_stuck", limit_s=entry.limit_s, grace_s=grace_s(entry.limit_s))
                try:
                    entry.on_stuck()
                except Exception:
                    log.exception("handler_stuck_not_booked")


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in another thread at its next bytecode (None takes back one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)
