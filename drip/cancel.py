"""Cancelling a scheduled message by id, for `DELETE /messages/{id}` and `drip cancel`.

Redis knows the scheduled messages; once a message is promoted or handled only
the history in PostgreSQL still knows its id, which tells "too late" (409)
from "unknown" (404).
"""

from __future__ import annotations

import uuid

from drip import db, logs
from drip.errors import Conflict, NotFound
from drip.store import Store

log = logs.get("drip.cancel")


def cancel_message(store: Store, database_url: str, message_id: str) -> str:
    """Cancel a scheduled message; returns its queue. NotFound if unknown, Conflict if no longer scheduled."""
    try:
        message_id = str(uuid.UUID(message_id))
    except ValueError:
        raise NotFound(f"no message {message_id!r}: drip's message ids are UUIDs") from None
    queue, cancelled = store.find_scheduled(message_id)
    if cancelled:
        raise Conflict(f"message {message_id} is already cancelled")
    if queue is not None:
        if store.cancel(queue, message_id):
            log.info("message_cancelled", queue=queue, message_id=message_id)
            return queue
        raise Conflict(f"message {message_id} was promoted before it could be cancelled")
    status = db.message_status(database_url, message_id)
    if status is None:
        raise NotFound(f"no message {message_id}")
    raise Conflict(f"message {message_id} is no longer scheduled (history: {status}); only scheduled messages can be cancelled")
