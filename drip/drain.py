"""One drain: hold a queue's lease and handle its ready messages in order.

Each step is one `advance` call that acks the batch just handled and takes the
next (up to DRIP_DRAIN_BATCH messages), so a batch costs one round trip. A
handler that fails or defers in the middle of a batch first has the messages
before it acked and its own message made the head (one more call), then its
failure is booked like any head's; the rest of that batch is taken again
afterwards. A failed attempt releases the
queue until its retry is due (the message stays at the head: the queue waits,
other queues go on); the last one sends it to the dead letters. The drain stops
after a budget (messages or time) so queues take turns, when its process shuts
down, or when its lease is lost; releasing puts the queue back in line if
messages remain.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from drip import logs
from drip.bell import LOOK, LineBell
from drip.config import Settings
from drip.errors import Defer, Permanent
from drip.keeper import Keeper
from drip.leases import Ack, Lost, Released, Taken
from drip.messages import now_ms
from drip.routes import Route, Router
from drip.scripts import REDIS_DOWN
from drip.store import Store

log = logs.get("drip.drain")

_MAX_ERROR = 2000
#: Longest wait of a standing drain between two looks at the line: a safety net, rings find the work.
_LOOK_AGAIN_S = 1.0

T = TypeVar("T")


@dataclass
class DrainContext:
    """What every drain of one worker process shares."""

    settings: Settings
    store: Store
    router: Router
    keeper: Keeper
    stopping: threading.Event
    worker: str
    bell: LineBell
    #: Grants (and timer ticks) waiting in this process for a thread; while any wait, no drain claims more.
    waiting: Callable[[], int] = lambda: 0
    #: How long a drain stands by after its granted queue (jittered by up to a quarter, so the threads
    #: granted together do not all leave together). Bounded so the broker's message of the grant is
    #: acked well within its brokers' patience for unacked messages (dramatiq's Redis heartbeats, 60 s).
    stand_s: float = 20.0


def backoff_ms(route: Route, attempt: int) -> int:
    """Exponential backoff with full jitter before retry number `attempt` + 1."""
    ceiling = min(route.backoff_max_ms, route.backoff_base_ms * 2 ** (attempt - 1))
    return round(random.uniform(0, ceiling))


def drain(ctx: DrainContext, queue: str, token: str) -> None:
    """Run one lease of `queue` to its end; never raises (the lease then simply expires)."""
    settings = ctx.settings
    route = ctx.router.route(queue)
    lost = ctx.keeper.hold(queue, token)
    began = time.monotonic()
    deadline = began + settings.drain_budget_ms / 1000
    handled = 0
    acks: list[Ack] = []
    # The lease surely holds until this (each step renews it for a TTL); a batch stops here, so a
    # holder stalled past its lease runs at most the message in hand, as with one message per step.
    sure_until = 0.0

    def advance(take: int) -> list[Taken] | Released | Lost:
        nonlocal sure_until
        sent = time.monotonic()
        step = _through_outage(ctx, lambda: ctx.store.advance_batch(
            queue, token, worker=ctx.worker, ttl_ms=settings.lease_ttl_ms, acks=acks, take=take))
        sure_until = sent + settings.lease_ttl_ms / 1000
        return step

    def refocus(taken: Taken) -> Taken | None:
        """Make `taken` the head (acking the batch's messages before it), so its failure can be booked."""
        if not acks:
            return taken
        step = advance(1)
        acks.clear()
        if isinstance(step, list) and step[0].message.id == taken.message.id:
            return step[0]
        return None

    try:
        while True:
            go_on = not (handled >= settings.drain_budget or time.monotonic() >= deadline
                         or ctx.stopping.is_set() or lost.is_set())
            step = advance(min(settings.drain_batch, settings.drain_budget - handled) if go_on else 0)
            acks.clear()
            if isinstance(step, Released):
                log.debug("lease_released", queue=queue, handled=handled, remaining=step.remaining,
                          duration_ms=round((time.monotonic() - began) * 1000))
                return
            if not isinstance(step, list):
                log.warning("lease_lost", queue=queue, handled=handled)
                return
            for position, taken in enumerate(step):
                now = time.monotonic()
                if position and (ctx.stopping.is_set() or lost.is_set() or now >= sure_until or now >= deadline):
                    break  # the rest stays at the head of the queue; the next step acks what was done
                outcome, ack = _handle(ctx, route, taken, token, refocus)
                if outcome != "done":
                    if outcome in ("retry", "deferred", "lost", "paused"):
                        return  # the lease is released (retry, deferred, pause) or no longer ours
                    break  # dead-lettered: the queue goes on from a fresh batch
                acks.append(ack)
                handled += 1
    except REDIS_DOWN as exc:
        log.warning("redis_unavailable", queue=queue, during="drain", error=str(exc))
    except Exception:
        log.exception("drain_crashed", queue=queue)
    finally:
        ctx.keeper.drop(queue)


def drain_and_claim(ctx: DrainContext, queue: str, token: str) -> None:
    """Drain the granted queue, then stand by on this thread: lease the queue that has waited longest in
    line and drain it too, and when none waits, wait for the line bell; for `ctx.stand_s` after.

    A queue that gets in line so is taken by a thread already running, sparing it the trip through
    the supervisor and the broker (a survey, a grant, a dramatiq message sent, fetched and acked).
    The thread's seat is marked in Redis all along, so the supervisor counts it busy and grants only
    to threads idle in the broker (its own grants count as busy from grant to the drain's first step).
    Both lease through the same script, so a queue is never leased twice. Standing ends early when
    the process stops, or when a grant (or timer tick) waits in this process for a thread.
    """
    bell = ctx.bell
    seat = f"{ctx.worker}/{threading.get_ident()}"
    bell.stand()
    try:
        ctx.store.seat(seat)
        drain(ctx, queue, token)
        settings = ctx.settings
        until = time.monotonic() + ctx.stand_s * random.uniform(0.75, 1.0)
        # What to try next: a queue a ring named, LOOK at the whole line, or None (wait for a ring).
        # After a claim, look again only if other queues waited beside it: later ones ring.
        ask: str | None = LOOK
        while not ctx.stopping.is_set() and not ctx.waiting() and time.monotonic() < until:
            if ask is None:
                claim = None
            elif ask == LOOK:
                claim = ctx.store.claim_next(settings.lease_ttl_ms)
            else:
                claim = ctx.store.claim(ask, settings.lease_ttl_ms)
            if claim is not None:
                log.debug("queue_claimed", queue=claim.queue)
                drain(ctx, claim.queue, claim.token)
                ask = LOOK if claim.more else None
            else:
                rung = bell.wait(max(0.0, min(until - time.monotonic(), _LOOK_AGAIN_S)))
                ask = LOOK if rung is None else rung
    except REDIS_DOWN as exc:
        log.warning("redis_unavailable", during="claim", error=str(exc))
    finally:
        bell.sit()
        try:
            ctx.store.unseat(seat)
        except REDIS_DOWN:
            pass  # counted busy until this thread's next drain clears it, or its process is gone


def _handle(ctx: DrainContext, route: Route, taken: Taken, token: str,
            refocus: Callable[[Taken], Taken | None]) -> tuple[str, Ack | None]:
    """Run the handler on the message once; returns (outcome, the Ack to send with the next step).
    Before booking a failure or deferral, `refocus` makes the message the queue's head (None: the lease is lost).

    Outcomes: "done", "dead" (dead-lettered, the queue goes on), "paused" (dead-lettered and
    the queue paused), "retry" (the queue waits for the backoff), "deferred" (the handler said
    not now: the queue waits, no attempt spent), "lost" (the lease is gone).
    """
    message = taken.message
    bound = log.bind(queue=message.queue, message_id=message.id, attempt=message.attempt)
    if message.attempt > route.max_attempts:
        # Every allowed attempt was handed out and none reported back: each one's
        # process died while the handler ran (a poison message). Do not run it again.
        error = (f"the handler's process died during each of {route.max_attempts} attempts "
                 "(killed, crashed or stalled past its lease)")
        verdict, attempts = _through_outage(ctx, lambda: ctx.store.fail(
            taken, token, error=error, max_attempts=route.max_attempts, retry_at_ms=0, not_run=True,
            on_dead=route.on_dead,
        ))
        return _after_failure(bound, route, verdict, error, attempts, None), None
    started = now_ms()
    if started < message.run_at_ms:
        bound.error("released_early", run_at=message.run_at, early_ms=message.run_at_ms - started)
    clock = time.perf_counter()
    try:
        route.handler(message)
    except Exception as exc:
        finished, duration_ms = now_ms(), round((time.perf_counter() - clock) * 1000, 3)
        focused = refocus(taken)
        if focused is None:
            bound.warning("lease_lost", during="failure bookkeeping")
            return "lost", None
        return _book_failure(ctx, route, focused, token, exc, bound, started, finished, duration_ms)
    bound.info("message_handled", duration_ms=round((time.perf_counter() - clock) * 1000, 3))
    return "done", Ack(taken.entry_id, message.id, started, now_ms())


def _book_failure(ctx: DrainContext, route: Route, taken: Taken, token: str, exc: Exception, bound,
                  started: int, finished: int, duration_ms: float) -> tuple[str, None]:
    """Book what the handler raised against the head message: a deferral, a dead letter or a retry."""
    message = taken.message
    if isinstance(exc, Defer):
        ready_at = now_ms() + round(exc.seconds * 1000)
        if not _through_outage(ctx, lambda: ctx.store.defer(taken, token, ready_at)):
            bound.warning("lease_lost", during="deferral")
            return "lost", None
        bound.info("message_deferred", reason=exc.reason, for_ms=round(exc.seconds * 1000))
        return "deferred", None
    if isinstance(exc, Permanent):
        error = str(exc)[:_MAX_ERROR]
        verdict, attempts = _through_outage(ctx, lambda: ctx.store.fail(
            taken, token, error=error, max_attempts=message.attempt, retry_at_ms=0,
            started_ms=started, finished_ms=finished, on_dead=route.on_dead,
        ))
        return _after_failure(bound, route, verdict, error, attempts, None), None
    error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
    delay_ms = backoff_ms(route, message.attempt)
    verdict, attempts = _through_outage(ctx, lambda: ctx.store.fail(
        taken, token, error=error, max_attempts=route.max_attempts, retry_at_ms=finished + delay_ms,
        started_ms=started, finished_ms=finished, on_dead=route.on_dead,
    ))
    return _after_failure(bound, route, verdict, error, attempts, delay_ms, duration_ms=duration_ms), None


def _through_outage(ctx: DrainContext, call: Callable[[], T]) -> T:
    """Run a step, riding out a short Redis outage: an ack that reaches Redis once it is back
    (and finds the lease still ours) spares the message a second run. Gives up, re-raising,
    once the lease would have expired anyway."""
    give_up = time.monotonic() + ctx.settings.lease_ttl_ms / 1000
    pause_s = 0.05
    while True:
        try:
            return call()
        except REDIS_DOWN:
            if time.monotonic() + pause_s > give_up or ctx.stopping.is_set():
                raise
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 1.0)


def _after_failure(bound, route: Route, verdict: str, error: str, attempts: int, delay_ms: int | None,
                   **extra: object) -> str:
    if verdict == "lost":
        bound.warning("lease_lost", during="failure bookkeeping")
        return "lost"
    if verdict == "dead":
        bound.error("message_dead_lettered", error=error, attempts=attempts, **extra)
        if route.on_dead == "pause":
            bound.warning("queue_paused", reason="on_dead = pause")
            return "paused"
        return "dead"
    bound.warning("message_retried", error=error, backoff_ms=delay_ms, **extra)
    return "retry"
