"""The WhatsApp Cloud API webhook: its payload shape, and how it becomes messages.

Meta posts `entry[].changes[].value` objects holding `messages[]` and
`statuses[]`; each item becomes one message in the queue of its conversation,
`wa:<phone_number_id>:<wa_id>`, so a conversation is handled in order while
conversations run in parallel. Meta redelivers (for up to 7 days) and sends
duplicates: the WhatsApp id (plus the status value, for statuses) is the
dedup_id, so a redelivery stores nothing new.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from drip.core.errors import InvalidInput
from drip.core.inbound import MAX_QUEUE_LENGTH, NO_CONTROL, decode
from drip.core.messages import Inbound, new_id

#: One half of a queue name `wa:<phone_number_id>:<wa_id>`: both halves fit MAX_QUEUE_LENGTH together.
Part = Annotated[str, msgspec.Meta(max_length=(MAX_QUEUE_LENGTH - 4) // 2, pattern=NO_CONTROL)]


class Metadata(msgspec.Struct):
    phone_number_id: Part
    display_phone_number: str | None = None


class Contact(msgspec.Struct):
    """A contact's WhatsApp id; its profile (and anything else Meta adds) rides along untouched."""

    wa_id: str


class MessageItem(msgspec.Struct, rename={"sender": "from"}):
    """One inbound message (text, image, ...); fields beyond these ride along untouched."""

    sender: Part
    id: str


class StatusItem(msgspec.Struct):
    """A delivery status of a message sent from the business number."""

    id: str
    status: str
    recipient_id: Part


class Value(msgspec.Struct):
    metadata: Metadata | None = None
    contacts: list[Contact] = msgspec.field(default_factory=list)
    messages: list[MessageItem] = msgspec.field(default_factory=list)
    statuses: list[StatusItem] = msgspec.field(default_factory=list)


#: A change that carries messages or statuses names its number (checked in `parse`); other fields need not.
WITH_METADATA = {"anyOf": [{"required": ["metadata"], "properties": {"metadata": {"type": "object"}}},
                           {"properties": {"messages": {"maxItems": 0}, "statuses": {"maxItems": 0}}}]}


class Change(msgspec.Struct):
    value: Annotated[Value, msgspec.Meta(extra_json_schema=WITH_METADATA)]
    field: str | None = None


class Entry(msgspec.Struct):
    changes: list[Change]
    id: str | None = None


class Notification(msgspec.Struct):
    """The body Meta POSTs to the webhook (the checked shape)."""

    entry: list[Entry]
    object: str | None = None


class _RawValue(msgspec.Struct):
    """A change's value with each item kept as its bytes, for the payloads."""

    contacts: list[msgspec.Raw] = msgspec.field(default_factory=list)
    messages: list[msgspec.Raw] = msgspec.field(default_factory=list)
    statuses: list[msgspec.Raw] = msgspec.field(default_factory=list)


class _RawChange(msgspec.Struct):
    value: _RawValue


class _RawEntry(msgspec.Struct):
    changes: list[_RawChange]


class _RawNotification(msgspec.Struct):
    entry: list[_RawEntry]


def queue_of(phone_number_id: str, wa_id: str) -> str:
    return f"wa:{phone_number_id}:{wa_id}"


def parse(body: bytes) -> list[Inbound]:
    """Every message and status of a notification, as messages to store (none for other fields)."""
    note = decode(body, Notification)
    raw_note = msgspec.json.decode(body, type=_RawNotification)  # cannot fail where the checked decode passed
    inbound = []
    for e, (entry, raw_entry) in enumerate(zip(note.entry, raw_note.entry, strict=True)):
        for c, (change, raw_change) in enumerate(zip(entry.changes, raw_entry.changes, strict=True)):
            value, raw = change.value, raw_change.value
            if not (value.messages or value.statuses):
                continue  # another field (e.g. account updates): nothing to handle
            if value.metadata is None:
                raise InvalidInput("missing required field 'metadata'", f"entry[{e}].changes[{c}].value.metadata")
            phone = value.metadata.phone_number_id
            profiles = {contact.wa_id: bytes(r) for contact, r in zip(value.contacts, raw.contacts, strict=True)}
            metadata = msgspec.json.encode(value.metadata)
            for item, r in zip(value.messages, raw.messages, strict=True):
                contact = profiles.get(item.sender)
                payload = (b'{"type":"message","message":' + bytes(r) + b',"contact":' + (contact or b"null")
                           + b',"metadata":' + metadata + b"}")
                inbound.append(Inbound(id=new_id(), queue=queue_of(phone, item.sender), payload=payload,
                                       dedup_id=f"wamid:{item.id}"))
            for item, r in zip(value.statuses, raw.statuses, strict=True):
                payload = b'{"type":"status","status":' + bytes(r) + b',"metadata":' + metadata + b"}"
                inbound.append(Inbound(id=new_id(), queue=queue_of(phone, item.recipient_id), payload=payload,
                                       dedup_id=f"wamid:{item.id}:{item.status}"))
    return inbound
