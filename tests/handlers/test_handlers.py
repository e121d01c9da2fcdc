"""Handlers: the built-in forward against a real local HTTP server, module:function import, and routing."""

from __future__ import annotations

import json
import os.path
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from structlog.testing import capture_logs

from drip.core import settings as config
from drip.core.errors import ConfigError, HandlerError
from drip.core.messages import Message, iso, new_id
from drip.handlers.forward import Forward
from drip.handlers.imported import import_handler
from drip.handlers.logged import log_message
from drip.work.routes import Router
from tests import sample_handlers as test_handlers
from tests.helpers import free_port

#: How long the slow endpoint holds a request: far beyond the timeouts the tests set.
SLOW_S = 1.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""

    url: str
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    """POST /status/<code> answers <code>; POST /slow answers 200 after SLOW_S (cut short at teardown)."""
    release = threading.Event()
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path == "/slow":
                release.wait(SLOW_S)
                status = 200
            else:
                status = int(self.path.rsplit("/", 1)[1])
            reply = b"boom" if status >= 300 else b""
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/status/200")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # The slow endpoint writes to a socket the client already gave up on: not an error here.
    httpd.handle_error = lambda request, address: None
    # A short poll interval keeps shutdown() (which waits for the next poll) quick.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), name="test-http", daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def message(payload_json: bytes = b'{"n": 1}', attempt: int = 1) -> Message:
    return Message(new_id(), "orders:7", payload_json, attempt, 1_700_000_000_123, 1_700_000_001_456)


def test_forward_posts_the_message_as_json(server):
    """Forward POSTs {id, queue, payload, attempt, enqueued_at, run_at} with the id as Idempotency-Key."""
    m = message(attempt=3)
    Forward(server.url + "/status/200", timeout_s=5)(m)
    (request,) = server.received
    assert request.path == "/status/200"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == m.id
    assert json.loads(request.body) == {
        "id": m.id,
        "queue": "orders:7",
        "payload": {"n": 1},
        "attempt": 3,
        "enqueued_at": iso(1_700_000_000_123),
        "run_at": iso(1_700_000_001_456),
    }


def test_forward_embeds_the_payload_byte_for_byte(server):
    """The payload is embedded as the raw JSON it arrived as (spacing, escapes, unicode), never re-encoded."""
    payload = '{"text": "h\\u00e9llo 👋",  "list": [1, 2.50, null, true], "nested": {"a": {"b": []}}}'.encode()
    Forward(server.url + "/status/200", timeout_s=5)(message(payload))
    (request,) = server.received
    assert b'"payload":' + payload + b"," in request.body
    assert json.loads(request.body)["payload"] == json.loads(payload)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_forward_succeeds_on_2xx(server, status):
    """Any 2xx answer is success: the call returns."""
    assert Forward(f"{server.url}/status/{status}", timeout_s=5)(message()) is None
    assert len(server.received) == 1


@pytest.mark.parametrize("status", [302, 404, 500, 503])
def test_forward_raises_on_non_2xx_naming_the_status(server, status):
    """A non-2xx answer (a redirect included: it is not followed) raises HandlerError naming the status."""
    with pytest.raises(HandlerError, match=rf"answered {status}\b") as caught:
        Forward(f"{server.url}/status/{status}", timeout_s=5)(message())
    assert len(server.received) == 1
    if status >= 400:
        assert "boom" in str(caught.value)


def test_forward_raises_when_the_connection_is_refused():
    """A closed port (connection refused) raises HandlerError naming the URL."""
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(HandlerError, match="ConnectError") as caught:
        Forward(url, timeout_s=5)(message())
    assert url in str(caught.value)


def test_forward_raises_when_the_server_outlasts_the_timeout(server):
    """A server slower than forward_timeout_s raises HandlerError (a timeout) instead of waiting for it."""
    with pytest.raises(HandlerError, match="Timeout"):
        Forward(server.url + "/slow", timeout_s=0.2)(message())
    assert [r.path for r in server.received] == ["/slow"]


def test_forward_reuses_its_client_across_calls(server):
    """One Forward serves many messages from one thread (its pooled client stays usable)."""
    forward = Forward(server.url + "/status/200", timeout_s=5)
    messages = [message(b'{"n": %d}' % i) for i in range(5)]
    for m in messages:
        forward(m)
    assert [r.headers["idempotency-key"] for r in server.received] == [m.id for m in messages]


def test_log_message_logs_and_succeeds():
    """The default handler logs message_logged with queue, id and attempt, and returns."""
    m = message(attempt=2)
    with capture_logs() as logs:
        assert log_message(m) is None
    assert {"event": "message_logged", "queue": "orders:7", "message_id": m.id, "attempt": 2}.items() <= logs[0].items()


def test_import_handler_resolves_module_function():
    """`module:function` resolves to that very function."""
    assert import_handler("tests.sample_handlers:record") is test_handlers.record


def test_import_handler_follows_dotted_attributes():
    """The part after the colon may be a dotted path (`module:obj.method`)."""
    assert import_handler("os:path.join") is os.path.join


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nocolon", "must look like module:function"),
        (":record", "must look like module:function"),
        ("tests.sample_handlers:", "must look like module:function"),
        ("no.such.module:f", "cannot import 'no.such.module'"),
        ("json:nope", "'json' has no 'nope'"),
        ("json:__doc__", "'json:__doc__' is not callable"),
    ],
)
def test_import_handler_rejects_bad_specs_with_a_helpful_message(spec, says):
    """Each malformed DRIP_HANDLER raises ConfigError naming the setting and what is wrong."""
    with pytest.raises(ConfigError) as caught:
        import_handler(spec)
    assert str(caught.value).startswith("DRIP_HANDLER")
    assert says in str(caught.value)


@pytest.fixture
def no_handler_env(monkeypatch):
    """Keep the test runner's own DRIP_HANDLER / DRIP_FORWARD_URL out of the default route."""
    monkeypatch.delenv("DRIP_HANDLER", raising=False)
    monkeypatch.delenv("DRIP_FORWARD_URL", raising=False)


def test_resolve_prefers_drip_handler_over_forward_url(no_handler_env):
    """DRIP_HANDLER wins when DRIP_FORWARD_URL is set too."""
    settings = config.load(handler="tests.sample_handlers:record", forward_url="http://127.0.0.1:9/hook")
    assert Router.from_settings(settings).route("q").handler is test_handlers.record


def test_resolve_forwards_when_only_forward_url_is_set(no_handler_env):
    """DRIP_FORWARD_URL alone gives a Forward to that URL with DRIP_FORWARD_TIMEOUT_S."""
    handler = Router.from_settings(config.load(forward_url="http://127.0.0.1:9/hook", forward_timeout_s=2.5)).route("q").handler
    assert isinstance(handler, Forward)
    assert handler.url == "http://127.0.0.1:9/hook"
    assert handler.timeout.read == 2.5


def test_resolve_logs_when_nothing_is_set(no_handler_env):
    """With neither DRIP_HANDLER nor DRIP_FORWARD_URL the handler is log_message."""
    assert Router.from_settings(config.load()).route("q").handler is log_message


def test_resolve_reports_a_bad_handler_as_config_error(no_handler_env):
    """A DRIP_HANDLER that cannot be imported surfaces as ConfigError when routes are built."""
    with pytest.raises(ConfigError, match="DRIP_HANDLER"):
        Router.from_settings(config.load(handler="no.such.module:f"))


def test_import_handler_relative_or_failing_module_is_a_config_error():
    """A relative module name is a ConfigError (printed as one line), not a TypeError traceback."""
    with pytest.raises(ConfigError, match="DRIP_HANDLER"):
        import_handler(".relative:handle")
