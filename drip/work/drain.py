"""One drain: hold a queue's lease and handle its ready messages in order.

A step (`advance`) takes a batch of up to DRIP_DRAIN_BATCH messages in one round trip;
each message is acked as its handler finishes, before the next handler starts (how:
drip.work.holding). A failure or a deferral is booked against the
head (the failing message itself); a failed attempt releases the queue until its retry
is due (the message stays at the head: the queue waits, other queues go on); the last
one sends it to the dead letters. The drain stops after a budget (messages or time) so
queues take turns, when its process shuts down, or when its lease is lost; releasing
puts the queue back in line if messages remain.
"""

from __future__ import annotations

import random
import time
from enum import Enum

from drip.core import logs
from drip.core.errors import Defer, Permanent, RateLimited
from drip.store.connection import REDIS_DOWN
from drip.store.leases import Ack, Released, Taken, Verdict
from drip.work.context import DrainContext, through_outage
from drip.work.holding import Holding
from drip.work.routes import Route
from drip.work.timelimits import HandlerTimedOut

log = logs.get("drip.drain")

_MAX_ERROR = 2000


class Outcome(Enum):
    """How handling one message ended, for the drain that holds its queue."""

    HANDLED = "handled"  # done: acked before the next handler starts, or with the next step
    DEAD = "dead"  # dead-lettered: the queue goes on from a fresh batch
    PAUSED = "paused"  # dead-lettered and the queue paused (on_dead = "pause"): released
    RETRY = "retry"  # failed: released until its backoff is over
    DEFERRED = "deferred"  # not now (a rate limit, or the handler said so): released until then
    LOST = "lost"  # the lease is no longer ours: nothing more may be changed


def backoff_ms(route: Route, attempt: int) -> int:
    """Exponential backoff with full jitter before retry number `attempt` + 1."""
    ceiling = min(route.backoff_max_ms, route.backoff_base_ms * 2 ** (attempt - 1))
    return round(random.uniform(0, ceiling))


def first_take(settings) -> int:
    """How many messages a lease's first step takes (DRIP_DRAIN_BATCH, within DRIP_DRAIN_BUDGET)."""
    return min(settings.drain_batch, settings.drain_budget)


def drain(ctx: DrainContext, queue: str, token: str,
          first: tuple[list[Taken] | Released, float] | None = None) -> None:
    """Run one lease of `queue` to its end; never raises (the lease then simply expires). `first`: the
    first step a claim took with the lease, and when (monotonic) the claim was sent."""
    settings = ctx.settings
    route = ctx.router.route(queue)
    lost = ctx.renewer.hold(queue, token)
    holding = Holding(ctx, queue, token)
    began = time.monotonic()
    deadline = began + settings.drain_budget_ms / 1000
    handled = 0

    def go_on() -> bool:
        return not (handled >= settings.drain_budget or time.monotonic() >= deadline or ctx.stopping.is_set()
                    or lost.is_set())

    try:
        while True:
            if first is not None:
                step, first = holding.took(*first), None
            else:
                step = holding.advance(min(settings.drain_batch, settings.drain_budget - handled) if go_on() else 0)
            if isinstance(step, Released):
                log.debug("lease_released", queue=queue, handled=handled, remaining=step.remaining,
                          duration_ms=round((time.monotonic() - began) * 1000))
                return
            if not isinstance(step, list):
                log.warning("lease_lost", queue=queue, handled=handled)
                return
            for position, taken in enumerate(step):
                outcome = handle(ctx, route, holding, taken)
                ctx.tally.count("drip_messages_handled_total", route=route.pattern, outcome=outcome.value)
                if outcome is Outcome.DEAD:
                    break  # the queue goes on from a fresh batch
                if outcome is not Outcome.HANDLED:
                    return  # the lease is released (retry, deferred, paused) or no longer ours
                handled += 1
                if position + 1 == len(step) or not go_on() or time.monotonic() >= holding.sure_until:
                    break  # its ack goes with the next step; the rest of the batch stays at the head
                holding.ack_before(step[position + 1])
    except REDIS_DOWN as exc:
        log.warning("redis_unavailable", queue=queue, during="drain", error=str(exc))
    except Exception:
        log.exception("drain_crashed", queue=queue)
    finally:
        ctx.renewer.drop(queue, token)


def handle(ctx: DrainContext, route: Route, holding: Holding, taken: Taken) -> Outcome:
    """Run the handler on the head message once and book what came of it. A handled message's ack is
    left in `holding.last_ack`; a failure or deferral is booked at once."""
    message = taken.message
    leases = ctx.store.leases
    bound = log.bind(queue=message.queue, message_id=message.id, attempt=message.attempt)
    if message.attempt > route.max_attempts:
        # Every allowed attempt was handed out and none reported back: each one's
        # process died while the handler ran (a poison message). Do not run it again.
        error = (f"the handler's process died during each of {route.max_attempts} attempts "
                 "(killed, crashed or stalled past its lease)")
        verdict, attempts = through_outage(ctx, lambda: leases.fail(
            taken, holding.token, error=error, max_attempts=route.max_attempts, retry_delay_ms=0, not_run=True,
            on_dead=route.on_dead,
        ))
        return _after_failure(bound, route, verdict, error, attempts, None)
    if route.rate is not None:
        wait_ms, _ = through_outage(ctx, lambda: ctx.store.budgets.take(route.budget_name(message.queue), route.rate))
        if wait_ms:
            return _defer(ctx, holding.token, taken, bound, wait_ms, f"rate limit of route {route.pattern}",
                          f"rate limit: {route.pattern}")
    started = ctx.clock.now_ms()
    ctx.tally.observe("drip_lag_seconds", max(0, started - message.run_at_ms) / 1000, route=route.pattern)
    if started + ctx.clock.error_ms < message.run_at_ms:  # earlier than this process can tell Redis's time
        bound.error("released_early", run_at=message.run_at, early_ms=message.run_at_ms - started)
    clock = time.perf_counter()
    try:
        stuck = ctx.limits.call(route.handler, message, route.timeout_s,
                                lambda: _give_up(ctx, route, holding.token, taken, bound, started))
    except (Exception, HandlerTimedOut) as exc:
        finished, duration_ms = ctx.clock.now_ms(), round((time.perf_counter() - clock) * 1000, 3)
        ctx.tally.observe("drip_handler_duration_seconds", duration_ms / 1000, route=route.pattern)
        return _book_failure(ctx, route, holding.token, taken, exc, bound, started, finished, duration_ms)
    if stuck:
        return Outcome.LOST  # given up on at its hard limit: its attempt is booked, its lease gone
    duration_s = time.perf_counter() - clock
    ctx.tally.observe("drip_handler_duration_seconds", duration_s, route=route.pattern)
    bound.info("message_handled", duration_ms=round(duration_s * 1000, 3))
    holding.last_ack = Ack(taken.entry_id, message.id, started, ctx.clock.now_ms())
    return Outcome.HANDLED


def _book_failure(ctx: DrainContext, route: Route, token: str, head: Taken, exc: BaseException, bound,
                  started: int, finished: int, duration_ms: float) -> Outcome:
    """Book what the handler raised against the head message: a deferral, a dead letter or a retry."""
    message = head.message
    leases = ctx.store.leases
    if isinstance(exc, Defer):
        kind = "rate limited" if isinstance(exc, RateLimited) else "deferred"
        return _defer(ctx, token, head, bound, round(exc.seconds * 1000), exc.reason, f"{kind}: {exc.reason}")
    if isinstance(exc, Permanent):
        error = str(exc)[:_MAX_ERROR]
        verdict, attempts = through_outage(ctx, lambda: leases.fail(
            head, token, error=error, max_attempts=message.attempt, retry_delay_ms=0,
            started_ms=started, finished_ms=finished, on_dead=route.on_dead,
        ))
        return _after_failure(bound, route, verdict, error, attempts, None)
    if isinstance(exc, HandlerTimedOut):
        error = why = f"timed out after {route.timeout_s:g} s"
    else:
        error, why = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR], ""
    delay_ms = backoff_ms(route, message.attempt)
    verdict, attempts = through_outage(ctx, lambda: leases.fail(
        head, token, error=error, max_attempts=route.max_attempts, retry_delay_ms=delay_ms,
        started_ms=started, finished_ms=finished, on_dead=route.on_dead, why=why,
    ))
    return _after_failure(bound, route, verdict, error, attempts, delay_ms, duration_ms=duration_ms)


def _defer(ctx: DrainContext, token: str, head: Taken, bound, delay_ms: int, reason: str, why: str) -> Outcome:
    """Not now: the queue waits `delay_ms` in line, no attempt spent, no thread held."""
    if through_outage(ctx, lambda: ctx.store.leases.defer(head, token, delay_ms, why)) is Verdict.LOST:
        bound.warning("lease_lost", during="deferral")
        return Outcome.LOST
    bound.info("message_deferred", reason=reason, for_ms=delay_ms)
    return Outcome.DEFERRED


def _give_up(ctx: DrainContext, route: Route, token: str, head: Taken, bound, started: int) -> None:
    """A handler still running after its limit and grace cannot be stopped: book its attempt as timed out
    (so its queue moves on; the stuck thread's own acks are then fenced) and recycle this process."""
    error = f"timed out after {route.timeout_s:g} s (the handler did not stop; its process is replaced)"
    verdict, attempts = ctx.store.leases.fail(
        head, token, error=error, max_attempts=route.max_attempts, retry_delay_ms=backoff_ms(route, head.message.attempt),
        started_ms=started, finished_ms=ctx.clock.now_ms(), on_dead=route.on_dead,
        why=f"timed out after {route.timeout_s:g} s")
    _after_failure(bound, route, verdict, error, attempts, None)
    ctx.recycle.set()
    ctx.stopping.set()


def _after_failure(bound, route: Route, verdict: Verdict, error: str, attempts: int, delay_ms: int | None,
                   **extra: object) -> Outcome:
    if verdict is Verdict.LOST:
        bound.warning("lease_lost", during="failure bookkeeping")
        return Outcome.LOST
    if verdict is Verdict.DEAD:
        bound.error("message_dead_lettered", error=error, attempts=attempts, **extra)
        if route.on_dead == "pause":
            bound.warning("queue_paused", reason="on_dead = pause")
            return Outcome.PAUSED
        return Outcome.DEAD
    bound.warning("message_retried", error=error, backoff_ms=delay_ms, **extra)
    return Outcome.RETRY
