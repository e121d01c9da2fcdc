"""What every drain of one worker process shares, and how a drain's Redis calls ride out an outage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from drip.core.retry import Backoff, call_until
from drip.core.settings import Settings
from drip.store.clock import RedisClock
from drip.store.connection import REDIS_DOWN
from drip.store.stores import Store
from drip.store.tallies import Tally
from drip.work.renewer import Renewer
from drip.work.routes import Router
from drip.work.standby_signal import StandbySignal
from drip.work.timelimits import TimeLimits

T = TypeVar("T")


@dataclass
class DrainContext:
    """What every drain of one worker process shares."""

    settings: Settings
    store: Store
    router: Router
    renewer: Renewer
    stopping: threading.Event
    worker: str
    standby: StandbySignal
    #: Grants (and timer ticks) waiting in this process for a thread; while any wait, no drain claims more.
    waiting: Callable[[], int] = lambda: 0
    #: How long a drain stands by after its granted queue (jittered by up to a quarter, so the threads
    #: granted together do not all leave together). Bounded so the broker's message of the grant is
    #: acked well within its brokers' patience for unacked messages (dramatiq's Redis heartbeats, 60 s).
    stand_s: float = 20.0
    #: Redis's clock as this process reads it (synced by the renewer): handler starts and ends.
    clock: RedisClock = field(default_factory=RedisClock)
    limits: TimeLimits = field(default_factory=TimeLimits)
    #: Set when a handler could not be stopped: the process stops taking work and is replaced.
    recycle: threading.Event = field(default_factory=threading.Event)
    #: This process's counts for /metrics (flushed to Redis by the worker process).
    tally: Tally = field(default_factory=Tally)


def through_outage(ctx: DrainContext, call: Callable[[], T]) -> T:
    """Run a step, riding out a short Redis outage: an ack that reaches Redis once it is back
    (and finds the lease still ours) spares the message a second run. Gives up, re-raising,
    once the lease would have expired anyway."""
    return call_until(call, errors=REDIS_DOWN, stop=ctx.stopping, give_up_s=ctx.settings.lease_ttl_ms / 1000,
                      backoff=Backoff(0.05, 1.0))
