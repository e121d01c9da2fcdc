"""POST /webhook, the router batch format: {"messages": [...], "metadata": {...}}, one message
per entry, queued by its sender (`from`, else `conversation_id`, else webhook:default)."""

from __future__ import annotations

import msgspec

from drip.core.inbound import check_queue, decode
from drip.core.messages import Inbound, new_id

#: Queue of a /webhook message that names neither `from` nor `conversation_id`.
DEFAULT_WEBHOOK_QUEUE = "webhook:default"


class WebhookBody(msgspec.Struct):
    """The router batch format: {"messages": [...], "metadata": {...}}."""

    messages: list[msgspec.Raw]
    metadata: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class _Routing(msgspec.Struct, rename={"sender": "from"}):
    sender: str | int | None = None
    conversation_id: str | int | None = None


def parse_webhook(body: bytes) -> list[Inbound]:
    """One message per entry, queued by its sender (`from`, else `conversation_id`)."""
    batch = decode(body, WebhookBody)
    inbound = []
    for index, raw in enumerate(batch.messages):
        at = f"messages[{index}]"
        routing = decode(bytes(raw), _Routing, at)
        if routing.sender not in (None, ""):
            queue = check_queue(str(routing.sender), f"{at}.from")
        elif routing.conversation_id not in (None, ""):
            queue = check_queue(str(routing.conversation_id), f"{at}.conversation_id")
        else:
            queue = DEFAULT_WEBHOOK_QUEUE
        payload = b'{"message":' + bytes(raw) + b',"metadata":' + bytes(batch.metadata) + b"}"
        inbound.append(Inbound(id=new_id(), queue=queue, payload=payload))
    return inbound
