"""POST /webhook, the router batch format: {"messages": [...], "metadata": {...}}, one message
per entry, queued by its sender (`from`, else `conversation_id`, else webhook:default)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from drip.core.inbound import (
    MAX_QUEUE_LENGTH,
    NO_CONTROL,
    Integer,
    WholeNumber,
    decode,
    id_text,
)
from drip.core.messages import Inbound, new_id

#: Queue of a /webhook message that names neither `from` nor `conversation_id`.
DEFAULT_WEBHOOK_QUEUE = "webhook:default"

#: A sender as a queue name ("" means none was given).
Sender = Annotated[str, msgspec.Meta(max_length=MAX_QUEUE_LENGTH, pattern=NO_CONTROL)] | Integer | WholeNumber | None


class WebhookMessage(msgspec.Struct, rename={"sender": "from"}):
    """What drip reads of an entry: who sent it. Every other field rides along in the payload."""

    sender: Sender = None
    conversation_id: Sender = None


class WebhookBody(msgspec.Struct):
    """The router batch format: {"messages": [...], "metadata": {...}} (the checked shape)."""

    messages: list[WebhookMessage]
    metadata: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class _Entries(msgspec.Struct):
    """The same body, each entry kept as its bytes for the payload."""

    messages: list[msgspec.Raw]
    metadata: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


def parse_webhook(body: bytes) -> list[Inbound]:
    """One message per entry, queued by its sender (`from`, else `conversation_id`)."""
    checked = decode(body, WebhookBody)
    batch = msgspec.json.decode(body, type=_Entries)  # cannot fail where the checked decode passed
    inbound = []
    for routing, raw in zip(checked.messages, batch.messages, strict=True):
        if routing.sender not in (None, ""):
            queue = id_text(routing.sender)
        elif routing.conversation_id not in (None, ""):
            queue = id_text(routing.conversation_id)
        else:
            queue = DEFAULT_WEBHOOK_QUEUE
        payload = b'{"message":' + bytes(raw) + b',"metadata":' + bytes(batch.metadata) + b"}"
        inbound.append(Inbound(id=new_id(), queue=queue, payload=payload))
    return inbound
