"""The `ghl` handler: release a dripped contact through the GoHighLevel API v2.

The release action comes from the message (`customData.ReleaseAction`), else
its location (DRIP_GHL_LOCATIONS) or route (`release_action`), else
DRIP_GHL_RELEASE_ACTION:

- `field:<key>=<value>` — set a contact custom field (PUT /contacts/{id}); the
  field's id is looked up by key once per location and cached;
- `tag:<name>` — POST /contacts/{id}/tags;
- `workflow:<id>` — POST /contacts/{id}/workflow/{id};
- `webhook:<url>` — the `forward` handler.

Before calling, the handler waits (Defer: no attempt spent, the queue waits)
for the location's business hours, for the queue's planned spacing (so contacts
held back do not leave in a burst), and for a token of the location's request
budget. A 429 defers too and blocks the location until its Retry-After; a 5xx or
a timeout is a failed attempt (retried with backoff); any other 4xx is permanent
(dead letter, with GoHighLevel's answer). Tokens never reach a log line.
"""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from drip.core import logs
from drip.core.errors import Defer, HandlerError, Permanent, RateLimited
from drip.core.inbound import decode
from drip.core.keys import Keys
from drip.core.messages import Message
from drip.core.settings import Settings
from drip.ghl import contacts
from drip.ghl.locations import Location, Locations, parse_action
from drip.ghl.state import GhlState
from drip.handlers.forward import Forward
from drip.store.connection import redis_client

log = logs.get("drip.ghl")

API_VERSION = "2021-07-28"
#: Longest wait for business hours before looking again (a clock or configuration change is then noticed).
RECHECK_S = 600.0
_UTC = ZoneInfo("UTC")


class GhlRelease:
    """The handler: one per route that names it, shared by a worker process's threads."""

    def __init__(self, settings: Settings, release_action: str | None = None) -> None:
        self.settings = settings
        self.config = Locations.from_settings(settings, release_action)
        self.state = GhlState(redis_client(settings.redis_url), Keys(settings.prefix))
        self.api_base = settings.ghl_api_base.rstrip("/")
        self.timeout = httpx.Timeout(settings.forward_timeout_s)
        self._local = threading.local()

    # --- the handler ---------------------------------------------------------------------------

    def __call__(self, message: Message) -> None:
        contact, _ = contacts.read(decode(message.payload_json, contacts.ContactBody))
        location = self.config.locations.get(contact.location_id)
        try:
            action = parse_action(contact.release_action) if contact.release_action else (
                (location.release_action if location else None) or self.config.default_action)
        except ValueError as exc:
            raise Permanent(str(exc)) from None
        if action.kind == "webhook":
            Forward(action.target, self.settings.forward_timeout_s)(message)
            return
        token = self._token(contact)
        self._wait_for_business_hours(contact.location_id, location, token)
        self._keep_spacing(message)
        if action.kind == "field":
            field_id = self._field_id(contact.location_id, action.target, token)
            body = {"customFields": [{"id": field_id, "key": action.target, "field_value": action.value}]}
            self._call(contact.location_id, "PUT", f"/contacts/{contact.contact_id}", token, body)
        elif action.kind == "tag":
            self._call(contact.location_id, "POST", f"/contacts/{contact.contact_id}/tags", token,
                       {"tags": [action.target]})
        else:
            self._call(contact.location_id, "POST", f"/contacts/{contact.contact_id}/workflow/{action.target}",
                       token, {})
        released = self.state.now_ms()
        self.state.record_release(message.queue, released, message.run_at_ms)
        log.info("contact_released", queue=message.queue, message_id=message.id, contact_id=contact.contact_id,
                 action=action.kind, late_ms=released - message.run_at_ms)

    def _token(self, contact: contacts.Contact) -> str:
        token = self.config.tokens.get(contact.location_id)
        if token is None and self.settings.ghl_payload_tokens:
            token = contact.api_key
        if not token:
            raise Permanent(f"no GoHighLevel token for location {contact.location_id}: set DRIP_GHL_TOKENS"
                            + ("" if self.settings.ghl_payload_tokens else " (or allow DRIP_GHL_PAYLOAD_TOKENS)"))
        return token

    def _wait_for_business_hours(self, location_id: str, location: Location | None, token: str) -> None:
        window = location.hours if location else self.config.default_hours
        if window is None:
            return
        zone = (location.zone if location else None) or self._zone(location_id, token)
        now = datetime.fromtimestamp(self.state.clock_ms() / 1000, zone)
        opening = window.next_opening(now)
        if opening is not None:
            wait_s = opening.timestamp() - now.timestamp()
            raise Defer(min(wait_s, RECHECK_S), f"outside business hours; opens {opening.isoformat()}")

    def _keep_spacing(self, message: Message) -> None:
        """A contact held back (closed hours, rate limits) leaves its planned gap after the one before it."""
        last = self.state.last_release(message.queue)
        if last is None or message.run_at_ms < last[1]:
            return
        due = last[0] + (message.run_at_ms - last[1])
        wait_ms = due - self.state.now_ms()
        if wait_ms > 0:
            raise Defer(wait_ms / 1000, "keeping the planned spacing after the previous release")

    def _zone(self, location_id: str, token: str) -> ZoneInfo:
        """The location's timezone from GoHighLevel, looked up once and cached (UTC if it has none)."""
        cached = self.state.timezone(location_id)
        if cached is None:
            answer = self._call(location_id, "GET", f"/locations/{location_id}", token).json()
            cached = (answer.get("location") or {}).get("timezone") or "UTC"
            self.state.cache_timezone(location_id, cached)
        try:
            return ZoneInfo(cached)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown_timezone", location_id=location_id, timezone=cached)
            return _UTC

    def _field_id(self, location_id: str, key: str, token: str) -> str:
        cached, found = self.state.field_id(location_id, key)
        if not cached:
            if not self.state.lock_fields(location_id):
                raise Defer(0.2, f"waiting for another worker's field lookup of location {location_id}")
            cached, found = self.state.field_id(location_id, key)  # a lookup may have ended since the first read
        if not cached:
            try:
                answer = self._call(location_id, "GET", f"/locations/{location_id}/customFields", token).json()
            except Exception:
                self.state.unlock_fields(location_id)  # whoever comes next looks up at once
                raise
            ids = {}
            for f in answer.get("customFields", []):
                field_key = f.get("fieldKey") or ""
                ids[field_key] = f["id"]
                ids[field_key.removeprefix("contact.")] = f["id"]
            self.state.cache_fields(location_id, ids)
            found = ids.get(key)
        if found is None:
            raise Permanent(f"location {location_id} has no custom field {key!r}")
        return found

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=self.timeout)
        return client

    def _call(self, location_id: str, method: str, path: str, token: str, body: dict | None = None) -> httpx.Response:
        """One request, within the location's budget; classifies GoHighLevel's answer."""
        wait_ms, entry = self.state.take(location_id)
        if wait_ms:
            raise RateLimited(wait_ms / 1000, f"location {location_id} is at its GoHighLevel rate limit")
        headers = {"Authorization": f"Bearer {token}", "Version": API_VERSION, "Accept": "application/json"}
        try:
            response = self._client().request(method, self.api_base + path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise HandlerError(f"GoHighLevel {method} {path} failed: {type(exc).__name__}") from None
        finally:
            self.state.settle(location_id, entry)
        remaining = _int(response.headers.get("x-ratelimit-remaining"))
        if response.status_code == 429:
            retry_s = _int(response.headers.get("retry-after")) or 10
            self.state.observe(location_id, 0, retry_s * 1000)
            raise RateLimited(retry_s, f"GoHighLevel answered 429 for location {location_id}")
        if remaining is not None:
            self.state.observe(location_id, remaining, 0)
        if response.status_code >= 500:
            raise HandlerError(f"GoHighLevel answered {response.status_code} to {method} {path}: "
                               f"{response.text[:300]}")
        if response.status_code >= 400:
            raise Permanent(f"GoHighLevel answered {response.status_code} to {method} {path}: {response.text[:500]}")
        return response


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None
