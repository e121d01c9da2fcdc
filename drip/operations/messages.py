"""One message as an operator asks about it (`drip show ID`, the console's message page and
`GET /messages/{id}`): where it is now, its queue, run_at, attempts, errors and history timeline."""

from __future__ import annotations

import msgspec

from drip.core.errors import DripError, NotFound
from drip.core.messages import iso
from drip.core.redact import redact_json
from drip.db import queries
from drip.operations.dead import letter_json
from drip.store import lookup
from drip.store.queues import message_uuid
from drip.store.stores import Store

#: History statuses that are final: Redis holds nothing more of such a message (bar a dead letter).
_FINAL = {"done", "cancelled"}


def show(store: Store, database_url: str, message_id: str) -> dict:
    """Where the message is (`scheduled`, `ready` at `position`, `in hand`, `done`, `dead`, `cancelled`,
    `accepted` while neither Redis's indexes nor the history place it yet) with its history. NotFound
    when neither Redis nor the history knows it."""
    message_id = message_uuid(message_id)
    try:
        row = queries.message_timeline(database_url, message_id)
        history_error = None
    except DripError as exc:  # history unreachable: Redis's view stands alone
        row, history_error = None, str(exc)
    letter = store.dead.get(message_id)
    place = lookup.scheduled(store.client, store.keys, message_id)
    if place is None and row is not None and row["status"] not in _FINAL and letter is None:
        place = lookup.in_line(store.client, store.keys, row["queue"], message_id)
    if row is None and place is None and letter is None:
        raise NotFound(f"no message {message_id} is known: not scheduled, not a dead letter, not in the history (a "
                       "message accepted moments ago is found once the recorder has written it)")
    answer: dict = {"id": message_id, "queue": None, "status": None, "position": None, "run_at": None,
                    "attempts": None, "last_error": None, "lease_holder": None, "timeline": [], "payload": None,
                    "dead_letter": letter_json(letter) if letter else None, "history_error": history_error}
    if row is not None:
        payload = row["payload"]
        answer.update(queue=row["queue"], status=row["status"], run_at=iso(row["run_at_ms"]),
                      attempts=row["attempts"], last_error=row["last_error"],
                      payload=msgspec.Raw(redact_json(msgspec.json.encode(payload))) if payload is not None else None)
        answer["timeline"] = [{"at": iso(row[field]), "what": what} for field, what in sorted((
            ("enqueued_ms", "accepted"), ("run_at_ms", "due"), ("started_ms", "last attempt started"),
            ("released_ms", "released"), ("finished_ms", row["status"])), key=lambda f: row[f[0]] or 0)
            if row[field] is not None]
    if letter is not None:
        answer.update(status="dead", queue=letter.queue, attempts=letter.attempts, last_error=letter.error,
                      run_at=iso(letter.run_at_ms), payload=msgspec.Raw(redact_json(letter.payload)))
    elif place is not None:
        answer.update(status=place.where, queue=place.queue, position=place.position, lease_holder=place.holder)
        if place.run_at_ms is not None:
            answer["run_at"] = iso(place.run_at_ms)
        if place.attempt is not None:
            answer["attempts"] = place.attempt
    elif answer["status"] in ("queued", "scheduled", "failed"):
        answer["status"] = "accepted"  # the history is behind Redis: handled, or on its way
    return answer
