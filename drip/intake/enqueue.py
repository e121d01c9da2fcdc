"""POST /enqueue, drip's own format: one message or an array of them, each with its queue,
payload and optional delay, run_at and dedup_id."""

from __future__ import annotations

from typing import Annotated

import msgspec

from drip.core import timing as timing_rules
from drip.core.errors import InvalidInput
from drip.core.inbound import MAX_DEDUP_LENGTH, Queue, Rules, decode
from drip.core.messages import Inbound, new_id
from drip.core.timing import NOW, Timing

DedupId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DEDUP_LENGTH)]


class EnqueueItem(msgspec.Struct, forbid_unknown_fields=True):
    """One message of POST /enqueue. Unknown fields are refused: a misspelt `dealy` must not run at once."""

    queue: Queue
    payload: msgspec.Raw
    delay: Annotated[float, msgspec.Meta(ge=0)] | None = None
    run_at: str | Annotated[float, msgspec.Meta(ge=0)] | None = None
    dedup_id: DedupId | None = None


#: `delay` and `run_at` exclude each other (checked in `_timing`): at least one of them is absent or null.
#: msgspec keeps no extra schema on a union's members, so drip.intake.openapi writes it into EnqueueItem's.
ONE_TIMING = {"anyOf": [{"properties": {"delay": {"type": "null"}}}, {"properties": {"run_at": {"type": "null"}}}]}
EnqueueBody = EnqueueItem | Annotated[list[EnqueueItem], msgspec.Meta(min_length=1)]


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
    batch = isinstance(decoded, list)
    inbound = []
    for index, item in enumerate(items):
        at = f"[{index}]." if batch else ""
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
