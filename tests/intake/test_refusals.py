"""Each refused request is logged once as `request_refused` (endpoint, status, field, reason; no payload), and a
flood of them is cut to a per-second budget whose next line counts what was left out."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.requests import Request
from structlog.testing import capture_logs

from drip.intake.app import create_app
from drip.intake.refusals import RefusalLog

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def client_for(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://drip") as client:
        yield client


def refusals(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "request_refused"]


@pytest.mark.parametrize(("request_kw", "status", "field"), [
    ({"json": {"queue": "q", "payload": "private words", "dealy": 60}}, 400, "dealy"),
    ({"content": b"private words", "headers": {"content-type": "text/plain"}}, 415, "Content-Type"),
    ({"content": b"x" * 5000, "headers": {"content-type": "application/json"}}, 413, ""),
])
async def test_a_refused_request_is_logged_once_with_endpoint_status_field_and_reason(settings, request_kw, status,
                                                                                       field):
    """400, 413 and 415 each leave one request_refused line naming endpoint, status and field, not the payload."""
    with capture_logs() as events:
        async for client in client_for(settings.model_copy(update={"max_body": 4096})):
            answer = await client.post("/enqueue", **request_kw)
    assert answer.status_code == status
    [line] = refusals(events)
    assert (line["endpoint"], line["status"], line["field"]) == ("/enqueue", status, field)
    assert line["reason"] == answer.json()["error"]
    assert "private words" not in json.dumps(events)


async def test_rate_limited_and_unauthorized_requests_are_logged(settings):
    """429 and 401 answers are logged as request_refused too."""
    s = settings.model_copy(update={"rate_limit": "1/m:1"})
    with capture_logs() as events:
        async for client in client_for(s):
            answers = [(await client.post("/enqueue", json={"queue": "q", "payload": 1})).status_code
                       for _ in range(2)]
        async for client in client_for(settings.model_copy(update={"api_tokens": "T"})):
            answers.append((await client.post("/enqueue", json={"queue": "q", "payload": 1})).status_code)
    assert answers == [202, 429, 401]
    assert [(e["status"], e["endpoint"]) for e in refusals(events)] == [(429, "/enqueue"), (401, "/enqueue")]


def test_a_flood_is_cut_to_the_budget_and_the_next_line_counts_what_was_left_out():
    """Past `lines_per_s` in one second nothing is written; the first line of a later second says how many."""
    now = [100.0]
    log = RefusalLog(lines_per_s=3, clock=lambda: now[0])
    request = Request({"type": "http", "method": "POST", "path": "/enqueue", "query_string": b"", "headers": []})
    with capture_logs() as events:
        for _ in range(10):
            log.refused(request, 400, "bad", "queue")
        now[0] = 101.2
        log.refused(request, 400, "bad", "queue")
        log.refused(request, 400, "bad", "queue")
    lines = refusals(events)
    assert len(lines) == 5
    assert [line.get("suppressed") for line in lines] == [None, None, None, 7, None]
