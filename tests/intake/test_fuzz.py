"""Property-based fuzzing of the webhook, in-process against real Redis: thousands of generated bodies,
headers and query strings never get a 5xx or a traceback, and a refusal stores nothing."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from drip.core.keys import SHARDS, Keys
from drip.intake.app import create_app
from tests.whatsapp_payloads import sign

PATHS = ["/enqueue", "/api/enqueue-contact", "/webhook", "/hooks/whatsapp"]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=20)
queues = st.text(max_size=220) | st.integers() | st.none()

enqueue_items = st.fixed_dictionaries({"queue": queues, "payload": json_values}, optional={
    "delay": st.floats() | st.integers() | st.text(max_size=5),
    "run_at": st.text(max_size=30) | st.integers(min_value=-10, max_value=10**14) | st.floats(),
    "dedup_id": st.text(max_size=210) | st.integers(),
})
contacts = st.fixed_dictionaries({}, optional={
    "contact_id": scalars, "location": st.fixed_dictionaries({}, optional={"id": queues}) | scalars,
    "workflow": st.fixed_dictionaries({}, optional={"id": queues}) | scalars,
    "customData": st.fixed_dictionaries({}, optional={"TimeFrame": st.text(max_size=20) | st.floats()}) | scalars,
})
webhooks = st.fixed_dictionaries({}, optional={
    "messages": st.lists(st.fixed_dictionaries({}, optional={"from": queues, "conversation_id": queues,
                                                              "text": scalars}) | scalars, max_size=5) | scalars,
    "metadata": json_values,
})
whatsapps = st.fixed_dictionaries({}, optional={"object": scalars, "entry": st.lists(st.fixed_dictionaries({}, optional={
    "changes": st.lists(st.fixed_dictionaries({}, optional={"field": scalars, "value": st.fixed_dictionaries({}, optional={
        "metadata": st.fixed_dictionaries({}, optional={"phone_number_id": queues}) | scalars,
        "messages": st.lists(st.fixed_dictionaries({}, optional={"from": queues, "id": queues}) | scalars, max_size=3),
        "statuses": st.lists(st.fixed_dictionaries({}, optional={"id": queues, "status": scalars,
                                                                 "recipient_id": queues}), max_size=3),
        "contacts": st.lists(st.fixed_dictionaries({}, optional={"wa_id": queues}) | scalars, max_size=2),
    })}), max_size=2)}), max_size=2)})

bodies = st.one_of(
    enqueue_items.map(json.dumps), st.lists(enqueue_items, max_size=5).map(json.dumps),
    contacts.map(json.dumps), webhooks.map(json.dumps), whatsapps.map(json.dumps), json_values.map(json.dumps),
    st.text(max_size=200), st.binary(max_size=200),
).map(lambda b: b if isinstance(b, bytes) else b.encode("utf-8", "surrogatepass"))

headers = st.fixed_dictionaries({}, optional={
    "content-type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                     "application/x-www-form-urlencoded", "application/vnd.api+json", ""]),
    "authorization": st.text(max_size=40, alphabet=st.characters(min_codepoint=32, max_codepoint=126))
    | st.sampled_from(["Bearer ", "Bearer x", "bearer  "]),
    "x-drip-timestamp": st.text(max_size=15, alphabet="0123456789.-e"),
    "x-drip-signature": st.text(max_size=20, alphabet="sha256=0123456789abcdef"),
    "x-hub-signature-256": st.just("sign") | st.text(max_size=20, alphabet="sha256=0123456789abcdef"),
})
queries = st.dictionaries(st.sampled_from(["token", "hub.mode", "hub.verify_token", "hub.challenge", "x"]),
                          st.text(max_size=20), max_size=3)


def stored_count(client, prefix: str) -> int:
    keys = Keys(prefix)
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.xlen(keys.events(shard))
    return sum(pipe.execute())


@pytest.mark.slow
def test_generated_requests_never_get_a_5xx_or_half_store(settings, r):
    """Thousands of generated requests over every intake endpoint: no 5xx, JSON errors, a refusal stores nothing."""
    app_settings = settings.model_copy(update={"whatsapp_app_secret": "s", "max_body": 4096})
    app = create_app(app_settings)
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drip")

    @hsettings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(PATHS), body=bodies, head=headers, query=queries, method=st.sampled_from(["POST", "GET"]))
    def check(path, body, head, query, method):
        if head.get("x-hub-signature-256") == "sign":
            head = {**head, "x-hub-signature-256": sign("s", body)}
        before = stored_count(r, settings.prefix)
        answer = loop.run_until_complete(client.request(method, path, content=body, headers=head, params=query))
        assert answer.status_code < 500, answer.text
        assert "Traceback" not in answer.text
        if answer.status_code >= 400:
            assert "error" in answer.json()
            assert stored_count(r, settings.prefix) == before, "a refused request stored something"

    try:
        check()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
