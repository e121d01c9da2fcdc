"""`forward`: POST each message as JSON to a URL, with its id as the Idempotency-Key; a 2xx
answer is success, anything else (or no answer within the timeout) a failure."""

from __future__ import annotations

import threading

import httpx
import msgspec

from drip.core.errors import HandlerError
from drip.core.messages import Message


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
