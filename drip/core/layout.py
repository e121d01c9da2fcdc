"""The Redis data layout, named once: every hash field, stream-entry field, history event
field and kind, dead-letter field, wake code and script reply word.

The Lua scripts spell none of these themselves: they write `STATE.token`, `EVENT.kind`,
`WAKE.line`, ... and drip.store.scripts replaces each such name by its string from here
when it loads a script, so Python and Lua cannot drift apart (a name missing here fails
the load). Key names are drip.core.keys's; what each key holds is documented there.

Values that pack several parts into one Redis string:

* replay list entry: "<id>\\n<enqueued_ms>\\n<run_at_ms>\\n<payload>"
* delayed set member: "<arrival sequence, 16 hex digits><id>"; bodies hash value: "<enqueued_ms>\\n<payload>"
* scheduled-ids hash value: "<queue>\\n<delayed set member>"
* dedup key value: "<id> <run_at_ms>" of the message first stored with that dedup_id
"""

from __future__ import annotations

import re


class State:
    """Fields of a queue's state hash (keys.state)."""

    #: The lease: its token (every change to the queue presents it), expiry (ms, Redis's clock),
    #: and the worker process holding it.
    token = "tok"
    expires = "exp"
    holder = "who"
    #: The head: the message being attempted (its entry id) and the attempts handed out of it. A
    #: message becomes the head before its handler starts (when taken first, or when the message
    #: before it is acked), so its attempts survive the death of the process running it.
    head = "head"
    attempt = "att"
    #: Why a queue waits in line with its place in the future ("retry after: <error>",
    #: "deferred: <reason>", "rate limit: <route>", "timed out after N s"); cleared when granted.
    waiting = "why"
    paused = "paused"
    #: The drip chain's latest run_at (ms): the next spread starts from here.
    tail = "tail"


class Entry:
    """Fields of a message in its queue's stream (and of the parts of a replay list entry)."""

    id = "id"
    payload = "p"
    enqueued = "e"
    run_at = "r"


class Event:
    """Fields of a history event (keys.events), which the recorder folds into rows."""

    kind = "k"
    id = "id"
    queue = "q"
    payload = "p"
    enqueued = "e"
    run_at = "r"
    meta = "m"  # JSON of the history-only fields (location_id, workflow_id, contact_id)
    attempts = "a"
    started = "s"
    finished = "f"
    error = "x"


class Kind:
    """What a history event says happened (its `kind`); also the history's statuses."""

    queued = "queued"
    scheduled = "scheduled"
    promoted = "promoted"
    failed = "failed"
    done = "done"
    dead = "dead"
    held = "held"  # skip.lua: a lease is out, nothing changed
    empty = "empty"  # skip.lua: the queue has no head to skip
    cancelled = "cancelled"
    replayed = "replayed"


class Dead:
    """Fields of a dead letter (keys.dead)."""

    id = "id"
    queue = "q"
    payload = "p"
    enqueued = "e"
    run_at = "r"
    attempts = "a"
    error = "x"
    failed_at = "t"


class Bucket:
    """Fields of a client's token bucket (keys.rate_bucket, DRIP_RATE_LIMIT)."""

    tokens = "tokens"
    at = "at"  # when `tokens` was last computed (ms, Redis's clock, fractional)


class Budget:
    """Fields of a GoHighLevel location's budget counters (keys.ghl_rate_meta)."""

    seq = "seq"  # the last request entry logged
    blocked = "blocked"  # no request before this (ms), after a 429
    day = "day"  # the day (since the epoch) day_count counts
    day_count = "day_count"


class Wake:
    """Wake-ups published on keys.wake_channel: what happened, by its first letter."""

    line = "q"  # queues got in line (several, or the supervisor's nudge)
    line_one = "q:"  # just this one got in line: "q:<queue>"
    due = "d"  # a new earliest run_at (the supervisor re-arms promotion)
    freed = "f"  # a thread stopped running drains and is back in the broker
    promoted = "p"  # due messages were promoted into their streams
    promotion_done = "s"  # a promote_due run ended
    reclaimed = "x"  # expired leases were reclaimed
    joined = "w"  # a worker process joined


class Reply:
    """Words that lead a script's reply (advance.lua, fail.lua, skip.lua)."""

    lost = "lost"
    released = "released"
    messages = "messages"
    retry = "retry"
    dead = "dead"
    held = "held"  # skip.lua: a lease is out, nothing changed
    empty = "empty"  # skip.lua: the queue has no head to skip


#: One message of advance.lua's "messages" reply, in order.
TAKEN = ("entry_id", "id", "payload", "enqueued_ms", "run_at_ms", "attempt")
#: One message of enqueue.lua's reply, in order.
STORED = ("id", "run_at_ms", "duplicate")

_NAMESPACES = {"STATE": State, "ENTRY": Entry, "EVENT": Event, "KIND": Kind, "DEAD": Dead, "BUCKET": Bucket,
               "BUDGET": Budget, "WAKE": Wake, "REPLY": Reply}
_NAME = re.compile(r"\b(" + "|".join(_NAMESPACES) + r")\.([a-z_]+)\b")


def lua_source(text: str) -> str:
    """A script with every layout name (`STATE.token`, ...) replaced by its string as a Lua literal."""

    def literal(match: re.Match) -> str:
        namespace, name = match.groups()
        value = vars(_NAMESPACES[namespace]).get(name)
        if not isinstance(value, str):
            raise KeyError(f"{namespace}.{name} is not named in drip.core.layout")
        return f'"{value}"'

    return _NAME.sub(literal, text)
