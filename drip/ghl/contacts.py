"""GoHighLevel contacts on POST /api/enqueue-contact, in every format real senders use.

- the workflow "Webhook" action: `contact_id`, `location.id`, `workflow.id`,
  `customData.*` (TimeFrame, ReleaseAction, and in its legacy form `api_key`),
  custom fields at the top level;
- the marketplace custom action: `data.{TimeFrame, locationId, workflowId,
  contactid, apiKey}` beside `extras.{locationId, contactId, workflowId, companyId}`,
  `meta`, `isMarketplaceAction: true` — `data.workflowId` often arrives empty
  while `extras.workflowId` holds the id.

Each contact is queued in `location:<location>:workflow:<workflow>`, or in
`location:<location>:workflow:default` when no workflow id is sent, and dripped
by its TimeFrame. The whole body is the payload (drip.core.redact strips its API keys
wherever a payload leaves Redis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from drip.core import timing
from drip.core.errors import InvalidInput
from drip.core.inbound import (
    MAX_QUEUE_LENGTH,
    NO_CONTROL,
    Integer,
    Rules,
    WholeNumber,
    check_queue,
    decode,
    id_text,
)
from drip.core.messages import Inbound, new_id

#: Queue suffix of contacts that name no workflow.
DEFAULT_WORKFLOW = "default"

#: Longest location or workflow id: both fit a queue name `location:<id>:workflow:<id>` together.
MAX_ID_LENGTH = (MAX_QUEUE_LENGTH - len("location::workflow:")) // 2
Id = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH, pattern=NO_CONTROL)] | Integer | WholeNumber | None
#: A TimeFrame as a number of seconds (a string is read by drip.core.timing.parse_timeframe).
TimeFrame = str | Annotated[float, msgspec.Meta(ge=0)] | None

# What /openapi.json says `read` requires beyond the types: a location id and a contact id that are not
# blank (what Python's str.strip() leaves), in the fields of the format the body is in.
_SPACE = r"\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_GIVEN = {"anyOf": [{"type": "number"},
                    {"type": "string", "pattern": rf"^[^\x00-\x1f\x7f]*[^{_SPACE}][^\x00-\x1f\x7f]*$(?!\n)"}]}


def _one_of(*paths: str) -> dict:
    """A body in which one of the dotted `paths` holds a given (non-blank) id."""
    def at(path: list[str]) -> dict:
        if len(path) == 1:
            return {"required": path, "properties": {path[0]: _GIVEN}}
        return {"required": path[:1], "properties": {path[0]: {"type": "object", **at(path[1:])}}}
    return {"anyOf": [at(p.split(".")) for p in paths]}


_MARKETPLACE = {"anyOf": [{"required": ["isMarketplaceAction"], "properties": {"isMarketplaceAction": {"const": True}}},
                          {"required": ["data"], "properties": {"data": {"type": "object"}}},
                          {"required": ["extras"], "properties": {"extras": {"type": "object"}}}]}
_WORKFLOW = {"properties": {"isMarketplaceAction": {"enum": [False, None]}, "data": {"type": "null"},
                            "extras": {"type": "null"}}}
FORMATS = {"anyOf": [
    {"allOf": [_WORKFLOW, _one_of("location.id"), _one_of("contact_id")]},
    {"allOf": [_MARKETPLACE, _one_of("data.locationId", "extras.locationId"),
               _one_of("data.contactid", "extras.contactId")]},
]}


class Ref(msgspec.Struct):
    id: Id = None


class CustomData(msgspec.Struct):
    TimeFrame: TimeFrame = None
    ReleaseAction: str | None = None
    api_key: str | None = None


class MarketplaceData(msgspec.Struct):
    TimeFrame: TimeFrame = None
    ReleaseAction: str | None = None
    locationId: Id = None
    workflowId: Id = None
    contactid: Id = None
    apiKey: str | None = None


class MarketplaceExtras(msgspec.Struct):
    locationId: Id = None
    workflowId: Id = None
    contactId: Id = None
    companyId: Id = None


class ContactBody(msgspec.Struct):
    """What drip reads of a contact, in either format (everything else rides along in the payload)."""

    contact_id: Id = None
    location: Ref | None = None
    workflow: Ref | None = None
    customData: CustomData | None = None
    data: MarketplaceData | None = None
    extras: MarketplaceExtras | None = None
    isMarketplaceAction: bool | None = None


#: The body as decoded and published: the types, and the formats `read` tells apart.
Body = Annotated[ContactBody, msgspec.Meta(extra_json_schema=FORMATS)]


@dataclass(frozen=True)
class Contact:
    """A contact's identity and release instructions, whatever format it came in."""

    location_id: str
    workflow_id: str
    contact_id: str
    timeframe: str | None
    release_action: str | None
    api_key: str | None

    @property
    def queue(self) -> str:
        return queue_of(self.location_id, self.workflow_id)


def queue_of(location_id: str, workflow_id: str) -> str:
    return f"location:{location_id}:workflow:{workflow_id}"


def _text(value: Id) -> str:
    return "" if value is None else id_text(value).strip()


def _timeframe(value: TimeFrame) -> str:
    if isinstance(value, float):
        return format(value, "f")  # 1e-05 as 0.000010: what parse_timeframe reads
    return _text(value)


def _first(*candidates: tuple[str, Id]) -> tuple[str, str]:
    """The first non-empty (field, value) of the candidates; ("", "") if none."""
    for name, value in candidates:
        if _text(value):
            return name, _text(value)
    return "", ""


def read(body: ContactBody) -> tuple[Contact, dict[str, str]]:
    """The contact in a decoded body, and the field each part came from (to name it in errors)."""
    data, extras = body.data or MarketplaceData(), body.extras or MarketplaceExtras()
    custom = body.customData or CustomData()
    marketplace = bool(body.isMarketplaceAction or body.data or body.extras)
    if marketplace:
        location = _first(("data.locationId", data.locationId), ("extras.locationId", extras.locationId))
        workflow = _first(("data.workflowId", data.workflowId), ("extras.workflowId", extras.workflowId))
        contact = _first(("data.contactid", data.contactid), ("extras.contactId", extras.contactId))
        timeframe = ("data.TimeFrame", _timeframe(data.TimeFrame))
        action, key = data.ReleaseAction, data.apiKey
        fields = {"location": "extras.locationId", "contact": "extras.contactId", "timeframe": "data.TimeFrame"}
    else:
        location = _first(("location.id", body.location.id if body.location else None))
        workflow = _first(("workflow.id", body.workflow.id if body.workflow else None))
        contact = _first(("contact_id", body.contact_id))
        timeframe = ("customData.TimeFrame", _timeframe(custom.TimeFrame))
        action, key = custom.ReleaseAction, custom.api_key
        fields = {"location": "location.id", "contact": "contact_id", "timeframe": "customData.TimeFrame"}
    if not location[1]:
        raise InvalidInput("missing the contact's location id", fields["location"])
    if not contact[1]:
        raise InvalidInput("missing the contact's id", fields["contact"])
    fields.update({k: v[0] for k, v in (("location", location), ("contact", contact)) if v[0]})
    fields["workflow"] = workflow[0] or fields["location"]
    found = Contact(location[1], workflow[1] or DEFAULT_WORKFLOW, contact[1], timeframe[1] or None,
                    _text(action) or None, _text(key) or None)
    return found, fields


def parse(body: bytes, now: int, rules: Rules) -> Inbound:
    """POST /api/enqueue-contact → the message to store, dripped by the contact's TimeFrame."""
    contact, fields = read(decode(body, Body))
    check_queue(contact.location_id, fields["location"])  # each part alone: the error names the part at fault
    check_queue(contact.workflow_id, fields["workflow"])
    queue = check_queue(contact.queue, fields["workflow"])
    when = rules.default_timeframe
    if contact.timeframe:
        try:
            when = timing.parse_timeframe(contact.timeframe)
            timing.check_horizon(when, now, rules.max_horizon_s)
        except ValueError as exc:
            raise InvalidInput(str(exc), fields["timeframe"]) from None
    return Inbound(
        id=new_id(),
        queue=queue,
        payload=body,
        dedup_id=_dedup_from_fields(body, rules.dedup_fields),
        timing=when,
        timing_field=fields["timeframe"],
        location_id=contact.location_id,
        workflow_id=contact.workflow_id,
        contact_id=contact.contact_id,
    )


def _dedup_from_fields(body: bytes, paths: tuple[str, ...]) -> str | None:
    """The values at `paths` joined, as a dedup_id; None (no dedup) when one is missing or not a scalar."""
    if not paths:
        return None
    document = msgspec.json.decode(body)
    values = []
    for path in paths:
        value: Any = document
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or isinstance(value, (dict, list)) or value == "":
            return None
        values.append(str(value))
    return "fields:" + "\x1f".join(values)[:200]
