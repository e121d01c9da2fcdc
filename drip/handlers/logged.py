"""`log`, the default handler: log the message and succeed (for trying drip out)."""

from __future__ import annotations

from drip.core import logs
from drip.core.messages import Message

log = logs.get("drip.handlers")


def log_message(message: Message) -> None:
    log.info("message_logged", queue=message.queue, message_id=message.id, attempt=message.attempt)
