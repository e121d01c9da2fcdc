"""promote_due: move every scheduled message whose run_at has come into its queue's stream.

Due queues are found through the per-shard due index (each queue scored by its
earliest run_at), so a run costs O(due queues), not O(scheduled messages). Each
queue is promoted by one atomic script call (in run_at order), so two runs at
once, from two supervisors or two ticks, never move a message twice or lose one.
"""

from __future__ import annotations

import time

from drip.core import logs
from drip.store.queues import Queues

log = logs.get("drip.scheduler")

#: Messages one script call moves (bounds how long Redis is busy with one call).
BATCH = 1000
#: Due queues read per shard per round.
QUEUES_PER_ROUND = 500


def promote_due(queues: Queues) -> int:
    """Promote everything due now; returns how many messages were moved."""
    started = time.perf_counter()
    moved = 0
    due = queues.due_queues(QUEUES_PER_ROUND)
    while due:
        counts = queues.promote(due, BATCH)
        moved += sum(counts)
        # Look again only if a queue had more than a batch due or the due index more
        # queues than a round reads; stop when a round moves nothing (what is left is
        # not due yet, or another run took it).
        if not any(counts) or (max(counts) < BATCH and len(due) < QUEUES_PER_ROUND):
            break
        due = queues.due_queues(QUEUES_PER_ROUND)
    if moved:
        log.info("messages_promoted", count=moved, duration_ms=round((time.perf_counter() - started) * 1000, 3))
    return moved
