"""What each console page shows, as plain data: the HTML pages render it and the JSON API returns it,
so both always agree. Redis answers the live state; PostgreSQL the history (a page still renders, with
a note, while PostgreSQL is unreachable)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

from drip.core.errors import DripError
from drip.core.messages import iso
from drip.core.redact import redact_json
from drip.core.settings import Settings
from drip.db import queries
from drip.ghl.locations import Locations
from drip.ghl.state import GhlState
from drip.operations import dead as dead_operations
from drip.operations import messages
from drip.store import browse
from drip.store.stores import Store


def _history(call, *args, fallback):
    """A history query's answer, or (fallback, the reason) while PostgreSQL cannot answer."""
    try:
        return call(*args), None
    except DripError as exc:
        return fallback, str(exc)


def overview(store: Store, settings: Settings) -> dict:
    totals = browse.totals(store.client, store.keys)
    minutes, error = _history(queries.per_minute, settings.database_url, 60, fallback=[])
    return {"totals": totals, "per_minute": [
        {**m, "minute": m["minute"].astimezone(UTC).isoformat().replace("+00:00", "Z")} for m in minutes],
        "history_error": error}


def queues(store: Store, *, match: str | None, sort: str, cursor: str | None, count: int = 50) -> dict:
    page = browse.page(store.client, store.keys, match=match or None, sort=sort, cursor=cursor or None, count=count)
    now = store.redis_now_ms()
    return {"queues": page.queues, "cursor": page.cursor, "now_ms": now, "match": match, "sort": sort}


def queue(store: Store, settings: Settings, name: str) -> dict:
    detail = browse.queue_detail(store.client, store.keys, name)
    history, error = _history(queries.queue_history, settings.database_url, name, 50, fallback=[])
    for key in ("ready", "scheduled"):
        detail[key] = [_shown(m) for m in detail[key]]
    detail["head"] = detail["ready"][0] if detail["ready"] else None
    detail["history"] = [_row(r) for r in history]
    detail["history_error"] = error
    detail["queue"] = name
    return detail


def dead(store: Store, *, queue: str | None, limit: int = 500) -> dict:
    letters = dead_operations.chosen(store.dead, queue=queue or None)
    return {"queue": queue, "total": len(letters),
            "dead_letters": [dead_operations.letter_json(d) for d in letters[:limit]]}


def message(store: Store, settings: Settings, message_id: str) -> dict:
    return messages.show(store, settings.database_url, message_id)


def gohighlevel(store: Store, settings: Settings) -> dict:
    """Per location + workflow over the last day: releases, planned vs actual, lateness, the next
    business-hours opening in the location's timezone, and the location's budget spent."""
    rows, error = _history(queries.workflows, settings.database_url, 24, fallback=[])
    try:
        locations = Locations.from_settings(settings)
    except DripError:
        locations = None
    state = GhlState(store.client, store.keys)
    now = datetime.now(UTC)
    for row in rows:
        location = locations.locations.get(row["location_id"]) if locations else None
        hours = location.hours if location else (locations.default_hours if locations else None)
        zone = (location.zone if location else None) or _zone(state.timezone(row["location_id"]))
        try:
            opening = hours.next_opening(now.astimezone(zone or UTC)) if hours else None
        except ValueError:  # closed for longer than the hours look ahead
            opening = None
        row["timezone"] = str(zone) if zone else None
        row["next_opening"] = "open now" if hours and opening is None else (opening.isoformat() if opening else None)
        row["budget_10s"], row["budget_today"] = state.used(row["location_id"])
    return {"workflows": rows, "history_error": error}


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ValueError, KeyError):
        return None


def _shown(m: dict) -> dict:
    """A message for a page: ISO times, payload redacted (GoHighLevel tokens never reach a page)."""
    out = {k: v for k, v in m.items() if k != "payload"}
    for key in ("enqueued_ms", "run_at_ms"):
        if key in m:
            out[key.removesuffix("_ms") + "_at" if key == "enqueued_ms" else "run_at"] = iso(m[key])
    out["payload"] = msgspec.Raw(redact_json(m["payload"]))
    return out


def _row(r: dict) -> dict:
    """A history row (drip.db.queries) as pages show it: ISO times, the payload redacted."""
    out = {k: v for k, v in r.items() if not k.endswith("_ms")}
    for ms, name in _TIMES:
        out[name] = iso(r[ms]) if r[ms] is not None else None
    out["payload"] = msgspec.Raw(redact_json(msgspec.json.encode(r["payload"]))) if r["payload"] is not None else None
    return out


_TIMES = (("enqueued_ms", "enqueued_at"), ("run_at_ms", "run_at"), ("started_ms", "started_at"),
          ("released_ms", "released_at"), ("finished_ms", "finished_at"))
