"""Operator actions on the dead letters: choose them (one, a queue's, all), replay (to the head or the
tail of their queue), purge; and their JSON, payloads redacted."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from drip.core import logs
from drip.core.errors import NotFound
from drip.core.messages import iso
from drip.core.redact import redact_json
from drip.operations.outcome import Done, plural
from drip.store.dead import DeadLetter, DeadLetters

log = logs.get("drip.operations")


def chosen(dead: DeadLetters, *, message_id: str | None = None, queue: str | None = None) -> list[DeadLetter]:
    """The dead letters one id, one queue, or (neither) all name; an id that is not dead is NotFound."""
    if message_id:
        letter = dead.get(message_id)
        if letter is None:
            raise NotFound(f"no dead letter {message_id} (see drip dead list)")
        return [letter]
    return dead.list(queue)


def replay(dead: DeadLetters, letters: list[DeadLetter], *, to_head: bool, by: str,
           progress: Callable[[int], None] = lambda n: None) -> Done:
    done = dead.replay(letters, to_head=to_head, progress=progress)
    where = "head" if to_head else "tail"
    if done:
        log.info("dead_letters_replayed", count=done, to=where, queues=sorted({d.queue for d in letters})[:20], by=by)
    return Done(done, f"replayed {plural(done, 'message')} to the {where} of their queue")


def purge(dead: DeadLetters, letters: list[DeadLetter], *, by: str,
          progress: Callable[[int], None] = lambda n: None) -> Done:
    purged = dead.purge(letters, progress=progress)
    if purged:
        log.info("dead_letters_purged", count=purged, queues=sorted({d.queue for d in letters})[:20], by=by)
    return Done(purged, f"purged {plural(purged, 'dead letter')}")


def letter_json(d: DeadLetter) -> dict:
    return {"id": d.id, "queue": d.queue, "attempts": d.attempts, "error": d.error, "failed_at": iso(d.failed_at_ms),
            "enqueued_at": iso(d.enqueued_ms), "run_at": iso(d.run_at_ms),
            "payload": msgspec.Raw(redact_json(d.payload))}
