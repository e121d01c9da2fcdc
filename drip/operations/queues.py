"""Operator actions on one queue: pause, resume, skip its head, cancel a scheduled message.

Each logs one event naming who acted (`by`: "cli" or the console's role and token name), so
every change an operator makes is in the logs.
"""

from __future__ import annotations

from drip.core import logs
from drip.core.errors import Conflict, NotFound
from drip.core.layout import Reply
from drip.db import queries
from drip.operations.outcome import Done
from drip.store.queues import Cancel, message_uuid, refusal
from drip.store.stores import Store

log = logs.get("drip.operations")


def pause(store: Store, queue: str, *, by: str) -> Done:
    if not store.queues.pause(queue):
        return Done(0, f"{queue} was paused already")
    log.info("queue_paused", queue=queue, by=by)
    return Done(1, f"paused {queue}")


def resume(store: Store, queue: str, *, by: str) -> Done:
    if not store.queues.resume(queue):
        return Done(0, f"{queue} was not paused")
    log.info("queue_resumed", queue=queue, by=by)
    return Done(1, f"resumed {queue}")


def skip_head(store: Store, queue: str, *, by: str) -> Done:
    """The head message to the dead letters (from where it can be replayed) and the queue goes on.
    Conflict while a lease is out: a running handler's message is never taken from under it."""
    word, detail = store.queues.skip(queue, f"skipped by {by}")
    if word == Reply.held:
        raise Conflict(f"{queue} is held by {detail or 'a worker'}: pause it, wait until it is released, "
                       "then skip its head")
    if word == Reply.empty:
        raise NotFound(f"{queue} has no message ready to skip")
    log.info("head_skipped", queue=queue, message_id=detail, by=by)
    return Done(1, f"sent {detail} (the head of {queue}) to the dead letters")


def cancel(store: Store, database_url: str, message_id: str, *, by: str) -> Done:
    """Cancel a scheduled message. NotFound if unknown, Conflict if no longer scheduled: where Redis
    no longer knows the id, the history tells "too late" (Conflict) from "unknown"."""
    message_id = message_uuid(message_id)
    outcome, queue = store.queues.cancel(message_id)
    if outcome is Cancel.CANCELLED:
        log.info("message_cancelled", queue=queue, message_id=message_id, by=by)
        return Done(1, f"cancelled {message_id} (queue {queue})")
    if outcome is Cancel.NOT_SCHEDULED:
        state = queries.message_status(database_url, message_id)
        if state is not None:
            raise Conflict(f"message {message_id} is no longer scheduled (history: {state}); only scheduled "
                           "messages can be cancelled")
    raise refusal(message_id, outcome)
