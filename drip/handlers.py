"""The handlers that run on messages: `forward` (POST it to a URL), an importable
module:function, and `log` (the default, for local use); routes.py picks one per queue.

A handler is a callable taking a Message; it succeeds by returning and fails by
raising. It may run more than once for one message (at-least-once): the
message id is its idempotency key and `message.attempt` says which try it is.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

import httpx
import msgspec

from drip import logs
from drip.errors import ConfigError, HandlerError
from drip.messages import Message

Handler = Callable[[Message], object]

log = logs.get("drip.handlers")


def log_message(message: Message) -> None:
    """The default handler: log the message and succeed."""
    log.info("message_logged", queue=message.queue, message_id=message.id, attempt=message.attempt)


class Forward:
    """POST each message as JSON to a URL; a 2xx answer is success, anything else a failure."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout = httpx.Timeout(timeout_s)
        self._local = threading.local()  # one connection pool per worker thread

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=self.timeout)
        return client

    def __call__(self, message: Message) -> None:
        body = msgspec.json.encode(
            {
                "id": message.id,
                "queue": message.queue,
                "payload": msgspec.Raw(message.payload_json),
                "attempt": message.attempt,
                "enqueued_at": message.enqueued_at,
                "run_at": message.run_at,
            }
        )
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.id}
        try:
            response = self._client().post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HandlerError(f"forward to {self.url} failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise HandlerError(f"forward to {self.url} answered {response.status_code}: {response.text[:200]}")


def import_handler(spec: str) -> Handler:
    """Resolve `module:function` (e.g. `myapp.jobs:handle`)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"DRIP_HANDLER must look like module:function, got {spec!r}")
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:  # a relative name, or the module itself failing at import
        raise ConfigError(f"DRIP_HANDLER: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"DRIP_HANDLER: {module_name!r} has no {attr!r}") from None
    if not callable(target):
        raise ConfigError(f"DRIP_HANDLER: {spec!r} is not callable")
    return target
