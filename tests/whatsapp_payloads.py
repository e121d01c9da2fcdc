"""Real-shaped WhatsApp Cloud API notifications, as Meta documents them, and their signature."""

from __future__ import annotations

import hashlib
import hmac
import json

PHONE_NUMBER_ID = "106540352242922"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def message(sender: str, wamid: str, text: str, timestamp: str = "1732240000") -> dict:
    return {"from": sender, "id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": text}}


def status(recipient: str, wamid: str, value: str) -> dict:
    return {"id": wamid, "status": value, "timestamp": "1732240001", "recipient_id": recipient,
            "conversation": {"id": "c1", "origin": {"type": "service"}},
            "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}


def notification(messages: list[dict] = (), statuses: list[dict] = (), contacts: list[dict] = (),
                 field: str = "messages") -> bytes:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID}}
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": field}]}]}
    return json.dumps(body).encode()


def contact(wa_id: str, name: str) -> dict:
    return {"profile": {"name": name}, "wa_id": wa_id}


def sample() -> bytes:
    """Two contacts, three messages, two statuses."""
    return notification(
        contacts=[contact("5215550001", "Ana"), contact("5215550002", "Luis")],
        messages=[message("5215550001", "wamid.A1", "hola"), message("5215550002", "wamid.B1", "buenas"),
                  message("5215550001", "wamid.A2", "¿sigues ahí?")],
        statuses=[status("5215550003", "wamid.OUT1", "delivered"), status("5215550003", "wamid.OUT1", "read")],
    )
