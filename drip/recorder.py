"""History events → PostgreSQL, in batches, off every hot path, in a process of its own.

The Lua scripts append events (queued, scheduled, promoted, failed, done, dead,
cancelled) to per-shard streams; the recorder reads each stream from its head,
writes a batch in one transaction and only then trims what it wrote from Redis
(so the head is always the first event not yet recorded: no consumer group,
no per-id acks). If PostgreSQL is down the events simply wait; after a crash
between commit and trim they are read again and re-applied, which the history
statements tolerate (inserts skip, updates repeat). One recorder acts at a time (a lease of its
own), so a message's events are applied in order. It runs as a child process of
`drip supervisor` (`python -m drip.recorder`): its CPU work would otherwise
hold the GIL against the supervisor's grant loop and add latency to every message.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import msgspec
import psycopg

from drip import config, db, logs
from drip.contacts import redact_json
from drip.errors import DripError
from drip.scripts import REDIS_DOWN
from drip.stopping import stop_on_signals
from drip.store import Store

log = logs.get("drip.recorder")

#: Events read per shard per round.
BATCH = 500
_IDLE_S = 0.1
_RETRY_S = 1.0


_FINAL = ("done", "dead", "cancelled")


def fold(events: list[dict[bytes, bytes]]) -> list[db.HistoryRow]:
    """A batch of events (in stream order) as one row per message: its acceptance, if in the batch,
    and the state its events reached. One COPY and two statements then write any batch."""
    rows: dict[str, db.HistoryRow] = {}
    for f in events:
        kind, mid = f[b"k"].decode(), f[b"id"].decode()
        row = rows.get(mid)
        if row is None:
            row = rows[mid] = db.HistoryRow(mid, status=kind)
        if kind in ("queued", "scheduled"):
            meta = msgspec.json.decode(f[b"m"])
            row.queue, row.payload = f[b"q"].decode(), _storable_json(redact_json(f[b"p"]))
            row.location_id, row.workflow_id, row.contact_id = (
                meta.get("location_id"), meta.get("workflow_id"), meta.get("contact_id"))
            row.run_at_ms, row.enqueued_ms = int(f[b"r"]), int(f[b"e"])
        elif kind == "promoted":
            kind = "queued"
        elif kind == "replayed":
            kind = "queued"
            row.replayed, row.attempts, row.finished_ms, row.released_ms = True, None, None, None
            row.status = kind
            continue
        else:
            if b"a" in f:
                attempts = int(f[b"a"])
                row.attempts = attempts if row.attempts is None else max(row.attempts, attempts)
            if b"s" in f and row.started_ms is None:
                row.started_ms = int(f[b"s"])
            if b"f" in f and kind in _FINAL:
                row.finished_ms = int(f[b"f"])
            if kind == "done" and b"s" in f:
                row.released_ms = int(f[b"s"])
            if b"x" in f:
                row.last_error = _text(f[b"x"])
        if not (row.status in _FINAL and kind not in _FINAL):
            row.status = kind
    return list(rows.values())


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
    """Moves history events from Redis to PostgreSQL while it holds the recorder lease."""

    def __init__(self, store: Store, database_url: str) -> None:
        self.store = store
        self.database_url = database_url
        self._conn: psycopg.Connection | None = None

    def run(self, stop: threading.Event, ttl_ms: int) -> None:
        token = secrets.token_hex(8)
        leading, next_election = False, 0.0
        ready = False
        while not stop.is_set():
            try:
                if time.monotonic() >= next_election:
                    next_election = time.monotonic() + ttl_ms / 3000
                    was, leading = leading, self.store.elect(token, ttl_ms, role="recorder")
                    if leading != was:
                        log.info("recorder_elected" if leading else "recorder_standing_by", recorder=token)
                if not leading:
                    stop.wait(ttl_ms / 3000)
                    continue
                if not ready:
                    applied = db.upgrade(self.database_url)
                    if applied:
                        log.info("migrations_applied", names=applied)
                    ready = True
                if self.record_once() == 0:
                    stop.wait(_IDLE_S)
            except (psycopg.Error, DripError) as exc:
                # Down, restarted, or a schema changed under us: reconnect and re-check migrations.
                log.warning("postgres_unavailable", error=db.first_line(exc))
                self._reset()
                ready = False
                stop.wait(_RETRY_S)
            except REDIS_DOWN as exc:
                log.warning("redis_unavailable", during="recording", error=str(exc))
                self._reset()
                stop.wait(_RETRY_S)
        self._reset()
        if leading:
            try:
                self.store.resign(token, role="recorder")
            except REDIS_DOWN:
                pass  # the lease expires by itself

    def record_once(self) -> int:
        """Write one batch of events; returns how many were recorded (0 when there were none)."""
        events = self.store.read_events(BATCH)
        if not events:
            return 0
        rows = fold([fields for _, _, fields in events])
        if self._conn is None:
            self._conn = db.connect_history(self.database_url)
        try:
            db.write_history(self._conn, rows)
        except psycopg.DataError:
            self._write_one_by_one(rows)
        self.store.forget_events({shard: entry_id for shard, entry_id, _fields in events})  # the last of each
        return len(events)

    def _write_one_by_one(self, rows: list[db.HistoryRow]) -> None:
        """A value PostgreSQL refuses must not wedge the recorder: store that row without its payload."""
        for row in rows:
            try:
                db.write_history(self._conn, [row])
            except psycopg.DataError as exc:
                if not row.accepted_here:
                    raise
                log.error("history_payload_refused", message_id=row.id, error=db.first_line(exc))
                row.payload = None
                db.write_history(self._conn, [row])

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


def main() -> None:
    """`python -m drip.recorder`, started (and restarted) by `drip supervisor`."""
    settings = config.load()
    logs.setup(settings.log_level, settings.log_format, process="recorder")
    stop = threading.Event()
    stop_on_signals(stop)
    Recorder(Store.from_settings(settings), settings.database_url).run(stop, settings.lease_ttl_ms)


if __name__ == "__main__":
    main()
