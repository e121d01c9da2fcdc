"""The WhatsApp Cloud API webhook: its payload shape, and how it becomes messages.

Meta posts `entry[].changes[].value` objects holding `messages[]` and
`statuses[]`; each item becomes one message in the queue of its conversation,
`wa:<phone_number_id>:<wa_id>`, so a conversation is handled in order while
conversations run in parallel. Meta redelivers (for up to 7 days) and sends
duplicates: the WhatsApp id (plus the status value, for statuses) is the
dedup_id, so a redelivery stores nothing new.
"""

from __future__ import annotations

import msgspec

from drip.core.errors import InvalidInput
from drip.core.inbound import check_queue, decode
from drip.core.messages import Inbound, new_id


class Metadata(msgspec.Struct):
    phone_number_id: str
    display_phone_number: str | None = None


class Contact(msgspec.Struct):
    """A contact's WhatsApp id; its profile (and anything else Meta adds) rides along untouched."""

    wa_id: str


class MessageItem(msgspec.Struct, rename={"sender": "from"}):
    """One inbound message (text, image, ...); fields beyond these ride along untouched."""

    sender: str
    id: str


class StatusItem(msgspec.Struct):
    """A delivery status of a message sent from the business number."""

    id: str
    status: str
    recipient_id: str


class Value(msgspec.Struct):
    metadata: Metadata | None = None
    contacts: list[msgspec.Raw] = msgspec.field(default_factory=list)
    messages: list[msgspec.Raw] = msgspec.field(default_factory=list)
    statuses: list[msgspec.Raw] = msgspec.field(default_factory=list)


class Change(msgspec.Struct):
    value: Value
    field: str | None = None


class Entry(msgspec.Struct):
    changes: list[Change]
    id: str | None = None


class Notification(msgspec.Struct):
    """The body Meta POSTs to the webhook."""

    entry: list[Entry]
    object: str | None = None


def queue_of(phone_number_id: str, wa_id: str) -> str:
    return f"wa:{phone_number_id}:{wa_id}"


def parse(body: bytes) -> list[Inbound]:
    """Every message and status of a notification, as messages to store (none for other fields)."""
    note = decode(body, Notification)
    inbound = []
    for e, entry in enumerate(note.entry):
        for c, change in enumerate(entry.changes):
            at = f"entry[{e}].changes[{c}].value"
            value = change.value
            if not (value.messages or value.statuses):
                continue  # another field (e.g. account updates): nothing to handle
            if value.metadata is None:
                raise InvalidInput("missing required field 'metadata'", f"{at}.metadata")
            phone = value.metadata.phone_number_id
            profiles = {decode(bytes(raw), Contact, f"{at}.contacts[{i}]").wa_id: bytes(raw)
                        for i, raw in enumerate(value.contacts)}
            metadata = msgspec.json.encode(value.metadata)
            for i, raw in enumerate(value.messages):
                item = decode(bytes(raw), MessageItem, f"{at}.messages[{i}]")
                queue = check_queue(queue_of(phone, item.sender), f"{at}.messages[{i}].from")
                contact = profiles.get(item.sender)
                payload = (b'{"type":"message","message":' + bytes(raw) + b',"contact":'
                           + (contact or b"null")
                           + b',"metadata":' + metadata + b"}")
                inbound.append(Inbound(id=new_id(), queue=queue, payload=payload, dedup_id=f"wamid:{item.id}"))
            for i, raw in enumerate(value.statuses):
                item = decode(bytes(raw), StatusItem, f"{at}.statuses[{i}]")
                queue = check_queue(queue_of(phone, item.recipient_id), f"{at}.statuses[{i}].recipient_id")
                payload = b'{"type":"status","status":' + bytes(raw) + b',"metadata":' + metadata + b"}"
                inbound.append(Inbound(id=new_id(), queue=queue, payload=payload,
                                       dedup_id=f"wamid:{item.id}:{item.status}"))
    return inbound
