"""Who may post: bearer tokens, HMAC signatures (optionally timestamped), GoHighLevel's shared
secret, and Meta's X-Hub-Signature-256. All comparisons take constant time.

Authentication is off while neither DRIP_API_TOKENS nor DRIP_SIGNING_SECRET is
set (local use); DRIP_REQUIRE_AUTH refuses to start without them. A refused
request costs no Redis write: it is decided before the rate limit and the store.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from drip.core.errors import Unauthorized
from drip.core.settings import Settings

#: How old a signed request's X-Drip-Timestamp may be (replays of older ones are refused).
MAX_AGE_S = 300


def _matches(secret: str | None, signature_header: str | None, signed: bytes) -> bool:
    if not secret or not signature_header or not signature_header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature_header.removeprefix("sha256=").strip().lower())


def client_of_token(token: str) -> str:
    """A stable, non-secret name for a token's holder (rate limits are kept per client)."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.tokens = settings.tokens
        self.signing_secret = settings.signing_secret
        self.token_header = settings.token_header.lower()
        self.enabled = bool(self.tokens or self.signing_secret)

    def _token(self, presented: str | None) -> str | None:
        if not presented:
            return None
        for token in self.tokens:
            if hmac.compare_digest(token.encode(), presented.encode()):
                return token
        return None

    def before_body(self, headers: Mapping[str, str], query: Mapping[str, str], *, shared_secret: bool) -> str | None:
        """The client a token names (Authorization: Bearer; with `shared_secret`, also the token header or
        ?token=), or None when the body's signature must decide. Raises Unauthorized for a stale timestamp."""
        if not self.enabled:
            return None
        self._check_timestamp(headers)
        authorization = headers.get("authorization", "")
        presented = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        if shared_secret and presented is None:
            presented = headers.get(self.token_header) or query.get("token")
        token = self._token(presented)
        if token:
            return client_of_token(token)
        if presented is not None or not self.signing_secret or "x-drip-signature" not in headers:
            raise Unauthorized("missing or wrong credentials: send Authorization: Bearer <token> "
                               "or X-Drip-Signature: sha256=<HMAC of the body>")
        return None

    def check_bearer(self, headers: Mapping[str, str]) -> None:
        """A change without a body (a cancellation) takes a bearer token while authentication is on."""
        if not self.enabled:
            return
        authorization = headers.get("authorization", "")
        presented = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        if not self._token(presented):
            raise Unauthorized("missing or wrong credentials: send Authorization: Bearer <a token of DRIP_API_TOKENS>")

    def after_body(self, headers: Mapping[str, str], body: bytes) -> str:
        """Check X-Drip-Signature over the raw body (prefixed with "<timestamp>." when timestamped)."""
        timestamp = headers.get("x-drip-timestamp")
        signed = f"{timestamp}.".encode() + body if timestamp else body
        if not _matches(self.signing_secret, headers.get("x-drip-signature"), signed):
            raise Unauthorized("wrong X-Drip-Signature: expected sha256=<hex HMAC-SHA256 of "
                               + ("'<X-Drip-Timestamp>.' + " if timestamp else "") + "the raw body>")
        return "signed"

    @staticmethod
    def _check_timestamp(headers: Mapping[str, str]) -> None:
        timestamp = headers.get("x-drip-timestamp")
        if timestamp is None:
            return
        try:
            age = abs(time.time() - float(timestamp))
        except ValueError:
            raise Unauthorized("X-Drip-Timestamp must be epoch seconds") from None
        if age > MAX_AGE_S:
            raise Unauthorized(f"X-Drip-Timestamp is more than {MAX_AGE_S} s away from now: a replay is refused")


def check_meta_signature(app_secret: str, header: str | None, body: bytes) -> None:
    """X-Hub-Signature-256 of a WhatsApp notification: HMAC-SHA256 of the raw body with the app secret."""
    if not _matches(app_secret, header, body):
        raise Unauthorized("missing or wrong X-Hub-Signature-256")
