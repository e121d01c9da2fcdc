"""History events → PostgreSQL, in batches, off every hot path, in a process of its own.

The Lua scripts append events (queued, scheduled, promoted, failed, done, dead,
cancelled) to per-shard streams; the recorder reads each stream from its head,
writes a batch in one transaction and only then trims what it wrote from Redis
(so the head is always the first event not yet recorded: no consumer group,
no per-id acks). If PostgreSQL is down the events simply wait; after a crash
between commit and trim they are read again and re-applied, which the history
statements tolerate (inserts skip, updates repeat). One recorder acts at a time (a lease of its
own), so a message's events are applied in order. It runs as a child process of
`drip supervisor` (drip.run.recorder): its CPU work would otherwise hold the GIL
against the supervisor's grant loop and add latency to every message.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

from drip.core import logs
from drip.core.errors import DripError
from drip.core.layout import Event, Kind
from drip.core.redact import redact_json
from drip.core.retry import Backoff, run_until
from drip.db.history import HistoryRow, HistoryWriter
from drip.db.migrate import upgrade
from drip.db.retention import Retention
from drip.store.connection import REDIS_DOWN
from drip.store.leaders import Leadership
from drip.store.stores import Store

log = logs.get("drip.recorder")

#: Events read per shard per round.
BATCH = 500
_IDLE_S = 0.1
_RETRY_S = 1.0

_FINAL = (Kind.done, Kind.dead, Kind.cancelled)
_KIND, _ID, _QUEUE, _PAYLOAD, _META, _RUN_AT, _ENQUEUED, _ATTEMPTS, _STARTED, _FINISHED, _ERROR = (
    name.encode() for name in (Event.kind, Event.id, Event.queue, Event.payload, Event.meta, Event.run_at,
                               Event.enqueued, Event.attempts, Event.started, Event.finished, Event.error))


def fold(events: list[dict[bytes, bytes]], payloads: str = "redacted") -> list[HistoryRow]:
    """A batch of events (in stream order) as one row per message: its acceptance, if in the batch,
    and the state its events reached. One COPY and two statements then write any batch.
    `payloads` (DRIP_HISTORY_PAYLOADS) is what a row keeps of its payload: full, redacted or none."""
    rows: dict[str, HistoryRow] = {}
    for f in events:
        kind, mid = f[_KIND].decode(), f[_ID].decode()
        row = rows.get(mid)
        if row is None:
            row = rows[mid] = HistoryRow(mid, status=kind)
        if kind in (Kind.queued, Kind.scheduled):
            meta = msgspec.json.decode(f[_META])
            row.queue, row.payload = f[_QUEUE].decode(), _payload(f[_PAYLOAD], payloads)
            row.location_id, row.workflow_id, row.contact_id = (
                meta.get("location_id"), meta.get("workflow_id"), meta.get("contact_id"))
            row.run_at_ms, row.enqueued_ms = int(f[_RUN_AT]), int(f[_ENQUEUED])
        elif kind == Kind.promoted:
            kind = Kind.queued
        elif kind == Kind.replayed:
            kind = Kind.queued
            row.replayed, row.attempts, row.finished_ms, row.released_ms = True, None, None, None
            row.status = kind
            continue
        else:
            if _ATTEMPTS in f:
                attempts = int(f[_ATTEMPTS])
                row.attempts = attempts if row.attempts is None else max(row.attempts, attempts)
            if _STARTED in f and row.started_ms is None:
                row.started_ms = int(f[_STARTED])
            if _FINISHED in f and kind in _FINAL:
                row.finished_ms = int(f[_FINISHED])
            if kind == Kind.done and _STARTED in f:
                row.released_ms = int(f[_STARTED])
            if _ERROR in f:
                row.last_error = _text(f[_ERROR])
        if not (row.status in _FINAL and kind not in _FINAL):
            row.status = kind
    return list(rows.values())


def _payload(payload: bytes, payloads: str) -> str | None:
    if payloads == "none":
        return None
    return _storable_json(payload if payloads == "full" else redact_json(payload))


def _text(value: bytes) -> str:
    """Text for a text column, which refuses NUL characters."""
    return value.decode(errors="replace").replace("\x00", "\ufffd")


def _storable_json(payload: bytes) -> str:
    """JSON text for a jsonb column, which refuses \\u0000 in strings: NULs become U+FFFD."""
    if b"\\u0000" not in payload:
        return payload.decode()
    return msgspec.json.encode(_replace_nul(msgspec.json.decode(payload))).decode()


def _replace_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_replace_nul(v) for v in value]
    if isinstance(value, dict):
        return {_replace_nul(k): _replace_nul(v) for k, v in value.items()}
    return value


class Recorder:
    """Moves history events from Redis to PostgreSQL while it holds the recorder's leadership, and,
    when it has caught up, prunes what is past the retention (one small batch of deletes at a time)."""

    def __init__(self, store: Store, database_url: str, *, ttl_ms: int = 10_000, payloads: str = "redacted",
                 retention_s: int = 0) -> None:
        self.store = store
        self.database_url = database_url
        self.payloads = payloads
        self.writer = HistoryWriter(database_url)
        self.retention = Retention(database_url, retention_s)
        self.leadership = Leadership(store.scripts, store.keys, "recorder", ttl_ms)
        self._migrated = False

    def run(self, stop: threading.Event) -> None:
        """Record while leading, stand by otherwise, until `stop`; rides out Redis and PostgreSQL outages."""
        run_until(stop, lambda: self._step(stop), errors=(DripError, *REDIS_DOWN), recover=self._recover,
                  backoff=Backoff(_RETRY_S, _RETRY_S))
        self.writer.close()
        self.retention.close()
        try:
            self.leadership.resign()
        except REDIS_DOWN:
            pass  # the lease expires by itself

    def _step(self, stop: threading.Event) -> None:
        if not self.leadership.check():
            stop.wait(self.leadership.every_s)
            return
        if not self._migrated:
            applied = upgrade(self.database_url)
            if applied:
                log.info("migrations_applied", migrations=applied)
            self._migrated = True
        recorded = self.record_once()
        # Retention only once caught up (less than a shard's batch read): new history comes first,
        # and an event waits behind at most one small batch of deletes.
        pruned = self.retention.step() if recorded < BATCH else 0
        if pruned == 0 and recorded == 0:
            stop.wait(_IDLE_S)

    def _recover(self, exc: BaseException, wait_s: float) -> None:
        if isinstance(exc, DripError):
            # Down, restarted, or a schema changed under us: reconnect and re-check migrations.
            log.warning("postgres_unavailable", error=str(exc), retry_in_s=wait_s)
            self._migrated = False
        else:
            log.warning("redis_unavailable", during="recording", error=str(exc), retry_in_s=wait_s)
        self.writer.close()
        self.retention.close()

    def record_once(self) -> int:
        """Write one batch of events; returns how many were recorded (0 when there were none)."""
        events = self.store.events.read(BATCH)
        if not events:
            return 0
        for message_id, reason in self.writer.write(fold([fields for _, _, fields in events], self.payloads)):
            log.error("history_payload_refused", message_id=message_id, error=reason)
        self.store.events.forget({shard: entry_id for shard, entry_id, _fields in events})  # the last of each
        return len(events)
