"""Retrying with growing waits, written once for every loop that must outlive an outage.

drip's processes ride out Redis and PostgreSQL outages by themselves: a long-running loop
(the supervisor's rounds, the wake-up listener, the recorder) keeps going, and a single
call (a drain's ack, a worker's first heartbeat) is tried again until it goes through or
there is no point any more. Both wait on a stop event, so a process told to stop does not
sit out a backoff first. (tenacity does the single call well, but its decorator shape fits
neither the loops nor the stop event; this is twenty lines.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Backoff:
    """Waits that start at `first_s` and double up to `max_s`; `reset` after a success."""

    def __init__(self, first_s: float = 0.1, max_s: float = 5.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next_s = first_s

    def next_s(self) -> float:
        """The wait before the next try (and double the one after)."""
        wait, self._next_s = self._next_s, min(self._next_s * 2, self.max_s)
        return wait

    def reset(self) -> None:
        self._next_s = self.first_s


def run_until(stop: threading.Event, step: Callable[[], object], *, errors: tuple[type[BaseException], ...],
              recover: Callable[[BaseException, float], None], backoff: Backoff | None = None) -> None:
    """Call `step` again and again until `stop` is set. When it raises one of `errors`, call
    `recover(exc, wait_s)` (log it, drop broken connections) and wait a growing backoff."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        try:
            step()
        except errors as exc:
            wait_s = backoff.next_s()
            recover(exc, wait_s)
            stop.wait(wait_s)
        else:
            backoff.reset()


def call_until(call: Callable[[], T], *, errors: tuple[type[BaseException], ...], stop: threading.Event,
               give_up_s: float = float("inf"), backoff: Backoff | None = None,
               on_retry: Callable[[BaseException, float], None] = lambda exc, wait_s: None) -> T:
    """Call `call` until it returns, retrying on `errors` with growing waits; re-raise once the next
    wait would end past `give_up_s` from now, or when `stop` is set."""
    backoff = backoff or Backoff()
    give_up = time.monotonic() + give_up_s
    while True:
        try:
            return call()
        except errors as exc:
            wait_s = backoff.next_s()
            if stop.is_set() or time.monotonic() + wait_s > give_up:
                raise
            on_retry(exc, wait_s)
            stop.wait(wait_s)
