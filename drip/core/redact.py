"""Credentials out of payloads wherever a payload leaves Redis (history, the CLI, the console).

GoHighLevel contacts carry API keys (`apiKey`, `customData.api_key`) and other senders
carry tokens; the keys below are replaced by "[redacted]" at any depth.
"""

from __future__ import annotations

from typing import Any

import msgspec

#: Keys whose values are credentials, wherever they sit in a payload (compared case-insensitively).
SECRET_KEYS = frozenset({"apikey", "api_key", "token", "access_token", "authorization"})
_SECRET_BYTES = tuple(key.encode() for key in SECRET_KEYS)


def redact(value: Any) -> Any:
    """A copy of a decoded payload with every credential replaced by "[redacted]"."""
    if isinstance(value, dict):
        return {k: "[redacted]" if k.lower() in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_json(raw: bytes) -> bytes:
    """JSON text with its credentials redacted (cheap when it holds none of the keys)."""
    lowered = raw.lower()
    if not any(key in lowered for key in _SECRET_BYTES):
        return raw
    try:
        return msgspec.json.encode(redact(msgspec.json.decode(raw)))
    except msgspec.DecodeError:
        return raw
