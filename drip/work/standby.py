"""Standing by: after its granted queue, a drain's thread stays a while and leases queues in
line itself, instead of going back to the broker for the supervisor's next grant.

A queue that gets in line so is taken by a thread already running, sparing it the trip
through the supervisor and the broker (a survey, a grant, a dramatiq message sent, fetched
and acked). The thread is marked busy in Redis all along, so the supervisor counts it and
grants only to threads idle in the broker (its own grants count as busy from grant to the
drain's first step). Both lease through the same script, so a queue is never leased twice.
"""

from __future__ import annotations

import random
import threading
import time

from drip.core import logs
from drip.store.connection import REDIS_DOWN
from drip.work.context import DrainContext
from drip.work.drain import drain, first_take
from drip.work.standby_signal import LOOK

log = logs.get("drip.standby")

#: Longest wait of a drain standing by between two looks at the line: a safety net, signals find the work.
_LOOK_AGAIN_S = 1.0


def drain_and_stand_by(ctx: DrainContext, queue: str, token: str) -> None:
    """Drain the granted queue, then stand by on this thread for `ctx.stand_s`: lease the queue that has
    waited longest in line and drain it too, and when none waits, wait for the standby signal.
    Standing by ends early when the process stops, or when a grant (or timer tick) waits in this
    process for a thread."""
    standby = ctx.standby
    thread = f"{ctx.worker}/{threading.get_ident()}"
    standby.stand_by()
    try:
        ctx.renewer.busy(thread)
        drain(ctx, queue, token)
        ttl_ms, take = ctx.settings.lease_ttl_ms, first_take(ctx.settings)
        until = time.monotonic() + ctx.stand_s * random.uniform(0.75, 1.0)
        # What to try next: a queue a signal named, LOOK at the whole line, or None (wait for a signal).
        # After a claim, look again only if other queues waited beside it: later ones signal.
        ask: str | None = LOOK
        while not ctx.stopping.is_set() and not ctx.waiting() and time.monotonic() < until:
            sent = time.monotonic()  # before the claim's call: its lease surely holds a TTL from here
            if ask is None:
                claim = None
            elif ask == LOOK:
                claim = ctx.store.leases.claim_next(ttl_ms, worker=ctx.worker, take=take)
            else:
                claim = ctx.store.leases.claim(ask, ttl_ms, worker=ctx.worker, take=take)
            if claim is not None:
                log.debug("queue_claimed", queue=claim.queue)
                drain(ctx, claim.queue, claim.token, first=(claim.first, sent))
                ask = LOOK if claim.more else None
            else:
                signalled = standby.wait(max(0.0, min(until - time.monotonic(), _LOOK_AGAIN_S)))
                ask = LOOK if signalled is None else signalled
    except REDIS_DOWN as exc:
        log.warning("redis_unavailable", during="claim", error=str(exc))
    finally:
        standby.stop_standing()
        ctx.renewer.idle(thread)  # when Redis is away, the renewer's next beat corrects the mark
