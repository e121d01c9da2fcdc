"""POST /enqueue, drip's own format: one message or an array of them, each with its queue,
payload and optional delay, run_at and dedup_id."""

from __future__ import annotations

import msgspec

from drip.core import timing as timing_rules
from drip.core.errors import InvalidInput
from drip.core.inbound import MAX_DEDUP_LENGTH, Rules, check_queue, decode
from drip.core.messages import Inbound, new_id
from drip.core.timing import NOW, Timing


class EnqueueItem(msgspec.Struct):
    """One message of POST /enqueue."""

    queue: str
    payload: msgspec.Raw
    delay: float | None = None
    run_at: str | float | None = None
    dedup_id: str | None = None


EnqueueBody = EnqueueItem | list[EnqueueItem]


def _timing(item: EnqueueItem, now: int, rules: Rules, at: str) -> Timing:
    if item.delay is not None and item.run_at is not None:
        raise InvalidInput("give delay or run_at, not both", f"{at}run_at")
    name = f"{at}delay" if item.delay is not None else f"{at}run_at"
    try:
        if item.delay is not None:
            when = timing_rules.delay(item.delay)
        elif item.run_at is not None:
            when = timing_rules.run_at(item.run_at)
        else:
            return NOW
        timing_rules.check_horizon(when, now, rules.max_horizon_s)
    except ValueError as exc:
        raise InvalidInput(str(exc), name) from None
    return when


def parse_enqueue(body: bytes, now: int, rules: Rules) -> tuple[list[Inbound], bool]:
    """POST /enqueue: one object or an array of them. Returns the messages and whether it was an array."""
    decoded = decode(body, EnqueueBody)
    items = decoded if isinstance(decoded, list) else [decoded]
    if not items:
        raise InvalidInput("the array is empty: send at least one message", "")
    batch = isinstance(decoded, list)
    inbound = []
    for index, item in enumerate(items):
        at = f"[{index}]." if batch else ""
        check_queue(item.queue, f"{at}queue")
        if item.dedup_id is not None and not 0 < len(item.dedup_id) <= MAX_DEDUP_LENGTH:
            raise InvalidInput(f"dedup_id must have 1 to {MAX_DEDUP_LENGTH} characters", f"{at}dedup_id")
        inbound.append(
            Inbound(
                id=new_id(),
                queue=item.queue,
                payload=bytes(item.payload),
                timing=_timing(item, now, rules, at),
                timing_field=f"{at}run_at" if item.run_at is not None else f"{at}delay",
                dedup_id=item.dedup_id,
            )
        )
    return inbound, batch
