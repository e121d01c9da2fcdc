"""`drip supervisor`: one leader hands queues to the worker pool.

The leader (a lease of its own; other supervisors wait as standbys) reclaims
expired queue leases, counts the threads idle in the broker (threads of live
worker processes minus those running a drain and grants on their way), grants a
lease to a queue in line for each, oldest first, and sends one dramatiq drain
message per grant. It sends promote_due when a scheduled message
is due: armed for the earliest run_at, and every DRIP_SCHEDULER_INTERVAL_MS while
messages are due. It counts a thread running a drain as busy even between leases:
such a thread stands by and leases queues in line itself (drip.drain), so the
supervisor grants only to threads idle in the broker. It wakes at once when a
queue gets in line while such threads exist, a thread frees while queues wait, or
a new earliest run_at appears (pub/sub), and on a timer otherwise.
Each supervisor also keeps a recorder process running (drip.run.recorder), one of
which, holding the recorder's leadership, writes history to PostgreSQL.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import redis

from drip.core import logs
from drip.core.layout import Wake
from drip.core.retry import run_until
from drip.core.settings import Settings, as_environment
from drip.run import procs
from drip.store.connection import REDIS_DOWN
from drip.store.leaders import Leadership
from drip.store.stores import Store
from drip.store.tallies import Tally
from drip.store.workers import Survey, close_quietly

log = logs.get("drip.supervisor")

_LINE, _FREED = Wake.line.encode(), Wake.freed.encode()

#: Longest sleep between rounds when nothing wakes the supervisor.
TICK_S = 0.5
#: Most queues in line read per shard in one survey (the free slots bound what one round grants).
_MAX_HEADS = 256


class Outbox(Protocol):
    """Where the supervisor's work goes (drip.actors.Outbox sends it through dramatiq)."""

    def drains(self, grants: Sequence[tuple[str, str]]) -> None: ...

    def promote(self) -> None: ...


class Supervisor:
    def __init__(self, settings: Settings, store: Store, outbox: Outbox) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.leadership = Leadership(store.scripts, store.keys, "supervisor", settings.lease_ttl_ms,
                                     every_s=min(TICK_S, settings.lease_ttl_ms / 3000))
        self._pubsub: redis.client.PubSub | None = None
        self._next_tick = 0.0
        self._head_limit = _MAX_HEADS
        self._round_due = True
        self._line_waiting = True
        self._idle_slots = 0
        self._next_round = 0.0
        self.tally = Tally()

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    def run(self, stop: threading.Event) -> None:
        """Lead or stand by until `stop` is set; survives Redis (and broker) outages."""
        self._recorder = self._start_recorder()
        run_until(stop, self._step, errors=(Exception,), recover=self._recover)
        procs.stop_all([self._recorder], 10)
        self._close_pubsub()
        try:
            self.leadership.resign()
        except REDIS_DOWN:
            pass  # the leader lease expires by itself

    def _recover(self, exc: BaseException, wait_s: float) -> None:
        if isinstance(exc, REDIS_DOWN):
            log.warning("redis_unavailable", during="supervision", error=str(exc), retry_in_s=wait_s)
            self._close_pubsub()
        else:
            # E.g. the broker (RabbitMQ) is down: grants already made expire and are
            # reclaimed, so retrying later loses nothing; the supervisor must not die.
            log.exception("supervision_failed", retry_in_s=wait_s)  # called inside the except: traceback logged

    def _step(self) -> None:
        """On the timer: watch the recorder, renew or seek leadership, reclaim expired leases.
        Every time, as leader, one round (grants, promotion); then wait for a wake-up."""
        if self._pubsub is None:
            self._pubsub = self.store.workers.subscribe_wake()
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + min(TICK_S, self.settings.lease_ttl_ms / 3000)
            if self._recorder.poll() is not None:
                log.error("recorder_died", exit_code=self._recorder.returncode)
                self._recorder = self._start_recorder()
            if self.leadership.check():
                reclaimed = self.store.leases.reclaim_expired()
                if reclaimed:
                    log.warning("leases_reclaimed", queues=len(reclaimed))
                    # Rare: counted and added to Redis at once (a failed flush keeps it for the next).
                    self.tally.count("drip_leases_reclaimed_total", len(reclaimed))
                    self.tally.flush(self.store.client, self.store.keys)
        if self.leading and (self._round_due or time.monotonic() >= self._next_round):
            self._next_round = time.monotonic() + self.lead()
        deadline = min(self._next_tick, self._next_round) if self.leading else self._next_tick
        self._round_due = self._worth_a_round(self._wait(max(0.0, deadline - time.monotonic())))

    def _worth_a_round(self, woken_by: set[bytes]) -> bool:
        """Whether a burst of wake-ups can change what a round grants. A queue in line needs a grant
        only if threads sit idle in the broker: running drains take it themselves. A freed thread
        matters only if queues wait in line. Anything else (a timeout, a worker joining, leases
        reclaimed, promotions) gets a round; skipped ones still come at their time (e.g. a run_at)."""
        if not woken_by or woken_by - {_LINE, _FREED}:
            return True
        if _LINE in woken_by:
            self._line_waiting = True
        return (_LINE in woken_by and self._idle_slots > 0) or (_FREED in woken_by and self._line_waiting)

    def lead(self) -> float:
        """One round as leader, on one survey of Redis: grant what the free slots allow, and
        send promote_due if something is due. Returns seconds until it should look again."""
        survey = self.store.workers.survey(self._head_limit)
        self._head_limit = max(1, min(_MAX_HEADS, survey.slots))
        granted, more = self._grant(survey)
        self._line_waiting = len(survey.heads) > granted
        self._idle_slots = self._free(survey) - granted
        if self._idle_slots <= 0 and any(since <= survey.now_ms for since, _, _ in survey.heads[granted:]):
            # Queues whose place came unannounced (a retry's backoff ended) are left to running drains:
            # signal them.
            self.store.workers.nudge()
        wait_s = self._schedule(survey)
        later = [since for since, _, _ in survey.heads if since > survey.now_ms]
        if later:  # a queue waiting out a retry's backoff: look again when it is due
            wait_s = min(wait_s, (min(later) - survey.now_ms) / 1000)
        return 0.0 if more else wait_s

    def _grant(self, survey: Survey) -> tuple[int, bool]:
        """Grant the oldest queues in line, one per free slot; returns (granted, whether more may be waiting)."""
        free = self._free(survey)
        heads = [h for h in survey.heads if h[0] <= survey.now_ms][: max(0, free)]
        if not heads:
            return 0, False
        by_shard: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for _since, shard, queue in heads:
            by_shard[shard].append((queue, secrets.token_hex(8)))
        granted = self.store.leases.grant(by_shard, self.settings.lease_ttl_ms)
        if granted:
            self.outbox.drains(granted)
            log.debug("leases_granted", count=len(granted), free=free)
        # Some queues left the line since the survey: slots remain, look again at once.
        return len(granted), 0 < len(granted) < len(heads)

    @staticmethod
    def _free(survey: Survey) -> int:
        """Threads idle in the broker: neither busy (running a drain: those find queues in line
        themselves, drip.work.standby) nor about to run a grant in transit."""
        return survey.slots - survey.busy - survey.in_transit

    def _schedule(self, survey: Survey) -> float:
        earliest = survey.earliest_due_ms
        if earliest is None:
            return TICK_S  # nothing scheduled; a new one wakes us
        if earliest > survey.now_ms:
            return (earliest - survey.now_ms) / 1000  # armed for the nearest run_at
        claim_ms = max(2000, 10 * self.settings.scheduler_interval_ms)
        if survey.slots > 0 and self.store.queues.claim_promotion(claim_ms):
            self.outbox.promote()
        return self.settings.scheduler_interval_ms / 1000

    def _start_recorder(self) -> subprocess.Popen:
        return procs.spawn(procs.python_module("drip.run.recorder"), as_environment(self.settings))

    def _wait(self, timeout_s: float) -> set[bytes]:
        """Sleep until a wake-up arrives or `timeout_s` passes; returns the reasons of the burst of
        wake-ups that arrived (empty on a timeout)."""
        pubsub = self._pubsub
        message = pubsub.get_message(timeout=timeout_s)
        reasons = set()
        while message is not None:
            reasons.add(message["data"][:1])  # a queue's own "line" wake-up is a line wake-up here
            message = pubsub.get_message(timeout=0)
        return reasons

    def _close_pubsub(self) -> None:
        close_quietly(self._pubsub)
        self._pubsub = None
