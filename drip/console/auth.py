"""Who may use the console: DRIP_CONSOLE_TOKENS' tokens, as `Authorization: Bearer <token>` or the
login form's HttpOnly, SameSite=Strict cookie; viewers read, operators act; a POST made with the
cookie carries a CSRF token (derived from the token, so no session is kept anywhere).

Open (everyone an operator, "dev") only when drip dev runs the console on loopback with no tokens set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from drip.core.errors import ConfigError

COOKIE = "drip_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: Paths any visitor may reach: the login form and the static files it needs.
OPEN_PATHS = ("/login", "/static/")


@dataclass(frozen=True, slots=True)
class Visitor:
    role: str  # "operator" | "viewer"
    who: str  # what the logs say acted: the role and a fingerprint of the token, never the token
    csrf: str
    by_cookie: bool

    @property
    def operator(self) -> bool:
        return self.role == "operator"


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def csrf_of(token: str) -> str:
    return hmac.new(token.encode(), b"drip-console-csrf", hashlib.sha256).hexdigest()


class Gate:
    """The tokens and roles the console accepts, or open (drip dev on loopback, no tokens set)."""

    def __init__(self, roles: dict[str, str], *, open_dev: bool) -> None:
        self.roles = roles
        self.open = open_dev and not roles
        # Open, the forms' CSRF token comes from a secret of this process: another site's page cannot
        # post a form to the console on loopback.
        self._open_csrf = csrf_of(secrets.token_hex(16))

    @classmethod
    def for_console(cls, roles: dict[str, str], host: str, *, dev: bool) -> Gate:
        if not roles and not (dev and _loopback(host)):
            raise ConfigError("the console needs DRIP_CONSOLE_TOKENS (<token>:operator,<token>:viewer): it is open "
                              "only under drip dev on a loopback address")
        return cls(roles, open_dev=dev)

    def visitor(self, request: Request) -> Visitor | None:
        if self.open:
            return Visitor("operator", "dev", self._open_csrf, by_cookie=False)
        header = request.headers.get("authorization", "")
        token, by_cookie = (header[7:].strip(), False) if header[:7].lower() == "bearer " else (
            request.cookies.get(COOKIE, ""), True)
        role = next((r for t, r in self.roles.items() if token and hmac.compare_digest(t, token)), None)
        if role is None:
            return None
        return Visitor(role, f"{role}:{fingerprint(token)}", csrf_of(token), by_cookie)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class GateMiddleware:
    """401 without a token (HTML asks to log in), 403 for a viewer's POST or a cookie POST whose CSRF
    token is missing or wrong. Sets request.state.visitor."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        visitor = self.gate.visitor(request)
        refusal = await self._refusal(request, visitor)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["visitor"] = visitor
        await self.app(scope, _replaying(request, receive) if hasattr(request, "_body") else receive, send)

    async def _refusal(self, request: Request, visitor: Visitor | None) -> Response | None:
        wants_html = "text/html" in request.headers.get("accept", "")
        if visitor is None:
            if wants_html and request.method == "GET":
                return _login_needed(request)
            return JSONResponse({"error": "a console token is needed (Authorization: Bearer <token>, or log in "
                                 "at /login)"}, status_code=401, headers=_CHALLENGE)
        if request.method == "POST":
            if not visitor.operator:
                return _forbidden("viewers cannot act: an operator token is needed", wants_html)
            # A form can be posted by any site's page (a JSON POST from elsewhere needs CORS, which the
            # console never grants), and the cookie rides along with any request: both need the token.
            if (visitor.by_cookie or _is_form(request)) and not await _csrf_ok(request, visitor):
                return _forbidden("the form's CSRF token is missing or wrong: reload the page and try again",
                                  wants_html)
        return None


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="drip console"'}


def _login_needed(request: Request) -> Response:
    return Response(f'<!doctype html><title>drip console: log in</title><p>401: a console token is needed. '
                    f'<a href="/login?next={quote(request.url.path, safe="/")}">Log in</a></p>', status_code=401,
                    media_type="text/html", headers=_CHALLENGE)


def _forbidden(text: str, html: bool) -> Response:
    return PlainTextResponse(text, status_code=403) if html else JSONResponse({"error": text}, status_code=403)


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded",
                                                               "multipart/form-data", "text/plain"))


async def _csrf_ok(request: Request, visitor: Visitor) -> bool:
    """The CSRF token from the X-CSRF-Token header or the form's `csrf` field (the console's forms are
    urlencoded; the body stays readable downstream: Request caches it)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        sent = next(iter(parse_qs((await request.body()).decode(errors="replace")).get(CSRF_FIELD, [])), None)
    return bool(sent) and hmac.compare_digest(str(sent), visitor.csrf)


def _replaying(request: Request, original: Receive) -> Receive:
    """A receive that hands the app the body the CSRF check already read, then the connection's own."""
    body, given = request._body, False  # read by request.body() above

    async def receive() -> dict:
        nonlocal given
        if given:
            return await original()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
