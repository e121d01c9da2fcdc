"""One lease of a queue being drained, and its acks.

Each message is acked as its handler finishes, before the next handler starts: the ack is
written to the connection without waiting for its reply, so at any instant at most the
message whose handler runs is handled but not acked, and a crash repeats at most that one.
An ack is sent ahead as a mark (mark.lua, one list push), which the next step applies (the
entry out of the queue, its done event); once marks have waited _APPLY_AFTER_S (slow
handlers), the ack applies them at once (ack.lua), so history and the console never lag a
batch behind. The last message of a batch is acked with the next step.

No ack waits in the process: holding 16 back (one mark per batch) measured no faster than a
mark per message (bench ordered and hot, medians of 3), so there is no setting that trades
the one-message replay bound for speed.
"""

from __future__ import annotations

import time

from drip.store.leases import Ack, Released, Taken
from drip.work.context import DrainContext, through_outage

#: Acks sent ahead as marks are applied at once by the next ack after this long (or by the next step).
_APPLY_AFTER_S = 0.05


class Holding:
    """One lease of a queue being drained: its token, the ack waiting for the next step, and until
    when the lease surely holds."""

    def __init__(self, ctx: DrainContext, queue: str, token: str) -> None:
        self.ctx = ctx
        self.queue = queue
        self.token = token
        self.last_ack: Ack | None = None
        #: When the acks sent ahead were last applied (a step, or an ack that applies them).
        self.applied_at = 0.0
        # Each step renews the lease for a TTL; a batch stops at this, so a holder stalled past its
        # lease runs at most the message in hand.
        self.sure_until = 0.0

    def advance(self, take: int) -> list[Taken] | Released | object:
        """Ack the last message handled (if not acked yet), then take up to `take` messages (0: release)."""
        sent = time.monotonic()
        ack, self.last_ack = self.last_ack, None
        return self.took(through_outage(self.ctx, lambda: self.ctx.store.leases.advance(
            self.queue, self.token, worker=self.ctx.worker, ttl_ms=self.ctx.settings.lease_ttl_ms, ack=ack,
            take=take)), sent)

    def took(self, step: list[Taken] | Released | object, sent: float) -> list[Taken] | Released | object:
        """A step sent at `sent` (monotonic): by advance, or the first, taken with the lease by a claim."""
        self.applied_at = sent
        self.sure_until = sent + self.ctx.settings.lease_ttl_ms / 1000
        return step

    def ack_before(self, nxt: Taken) -> None:
        """Ack the message just handled and make `nxt` the head before its handler starts, without waiting
        (the reply is read with the next call): a mark, or, once marks have waited _APPLY_AFTER_S, an ack
        that applies them."""
        ack, self.last_ack = self.last_ack, None
        leases = self.ctx.store.leases
        send = leases.mark
        if (now := time.monotonic()) - self.applied_at >= _APPLY_AFTER_S:
            send, self.applied_at = leases.ack, now
        through_outage(self.ctx, lambda: send(self.queue, self.token, ack, nxt.entry_id))
