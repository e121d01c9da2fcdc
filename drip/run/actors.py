"""drip's two actors, `drain` and `promote_due`, and the sending of work to them.

Only grants and timer ticks travel through the broker (a queue name and lease
token, or nothing at all); messages stay in Redis. A drain message that arrives
late or twice finds its token stale and does nothing, and promote_due is safe to
run twice at once, so the broker's own redelivery rules never matter for correctness.
"""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq

from drip.core import logs
from drip.core.settings import Settings
from drip.run.broker import DoorbellRedisBroker, queue_name, timer_queue_name
from drip.store.connection import REDIS_DOWN
from drip.work import scheduler
from drip.work.context import DrainContext
from drip.work.standby import drain_and_stand_by

log = logs.get("drip.actors")

#: dramatiq runs lower numbers first: a timer tick never waits behind drains.
_TIMER_PRIORITY, _DRAIN_PRIORITY = 0, 10


class Outbox:
    """What the supervisor sends to the worker pool."""

    def __init__(self, broker: dramatiq.Broker, settings: Settings) -> None:
        self.broker = broker
        self.drains_queue = queue_name(settings)
        self.timers_queue = timer_queue_name(settings)

    def drains(self, grants: Sequence[tuple[str, str]]) -> None:
        """One drain per (queue, token) grant, then wake idle consumers."""
        for queue, token in grants:
            self._send(self.drains_queue, "drain", (queue, token))
        self._ring_doorbell(self.drains_queue, len(grants))

    def promote(self) -> None:
        """One promote_due run."""
        self._send(self.timers_queue, "promote_due", ())
        self._ring_doorbell(self.timers_queue, 1)

    def _send(self, queue: str, actor: str, args: tuple) -> None:
        self.broker.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}))

    def _ring_doorbell(self, queue: str, sent: int) -> None:
        if sent and isinstance(self.broker, DoorbellRedisBroker):
            self.broker.ring(queue, sent)


def declare(broker: dramatiq.Broker, ctx: DrainContext) -> None:
    """Register the actors in a worker process, bound to that process's context."""

    def run_drain(queue: str, token: str) -> None:
        drain_and_stand_by(ctx, queue, token)

    def run_promote_due() -> None:
        # Never raises: a failed run is simply followed by the next tick (its claim expires).
        try:
            scheduler.promote_due(ctx.store.queues)
            ctx.store.queues.promotion_done()
        except REDIS_DOWN as exc:
            log.warning("redis_unavailable", during="promotion", error=str(exc))
        except Exception:
            log.exception("promotion_failed")

    dramatiq.Actor(
        run_drain, broker=broker, actor_name="drain", queue_name=queue_name(ctx.settings),
        priority=_DRAIN_PRIORITY, options={},
    )
    dramatiq.Actor(
        run_promote_due, broker=broker, actor_name="promote_due", queue_name=timer_queue_name(ctx.settings),
        priority=_TIMER_PRIORITY, options={},
    )
