"""The webhook's security and limits, in-process against real Redis: WhatsApp, auth, rate limits, caps, OpenAPI."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from drip.core import settings as config
from drip.core.keys import Keys
from drip.intake.app import create_app
from tests.helpers import snapshot
from tests.whatsapp_payloads import PHONE_NUMBER_ID, notification, sample, sign

pytestmark = pytest.mark.anyio

SECRET = "app-secret"
TOKEN = "tok-123"
SIGNING = "signing-secret"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def client_for(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drip") as client:
            yield client


@pytest.fixture
async def wa(settings):
    s = settings.model_copy(update={"whatsapp_app_secret": SECRET, "whatsapp_verify_token": "verify-me"})
    async for c in client_for(s):
        yield c


@pytest.fixture
async def secured(settings):
    s = settings.model_copy(update={"api_tokens": f"{TOKEN},other-token", "signing_secret": SIGNING})
    async for c in client_for(s):
        yield c


def queue_ids(r, settings, queue: str) -> list[str]:
    return [f[b"id"].decode() for _, f in r.xrange(Keys(settings.prefix).stream(queue))]


def post_signed(client, body: bytes, signature: str | None):
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return client.post("/hooks/whatsapp", content=body, headers=headers)


# --- WhatsApp ----------------------------------------------------------------------------------


async def test_whatsapp_handshake_echoes_the_challenge_only_for_the_right_token(wa):
    """hub.mode=subscribe with the right verify token → 200 and the challenge as text; otherwise 403."""
    ok = await wa.get("/hooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "verify-me",
                                                 "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444" and ok.headers["content-type"].startswith("text/plain")
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                   {"hub.mode": "subscribe", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"}):
        refused = await wa.get("/hooks/whatsapp", params=params)
        assert refused.status_code == 403 and "error" in refused.json()


async def test_whatsapp_notification_becomes_one_message_per_item_in_conversation_queues(wa, r, settings):
    """2 contacts, 3 messages, 2 statuses → 5 messages, each in wa:<phone_number_id>:<wa_id>, profile kept."""
    body = sample()
    answer = await post_signed(wa, body, sign(SECRET, body))
    assert answer.status_code == 200 and answer.json()["queued"] == 5
    ana, luis, out = (f"wa:{PHONE_NUMBER_ID}:{n}" for n in ("5215550001", "5215550002", "5215550003"))
    assert len(queue_ids(r, settings, ana)) == 2 and len(queue_ids(r, settings, luis)) == 1
    assert len(queue_ids(r, settings, out)) == 2
    (_, first), _ = r.xrange(Keys(settings.prefix).stream(ana))
    payload = json.loads(first[b"p"])
    assert payload["type"] == "message" and payload["message"]["text"]["body"] == "hola"
    assert payload["contact"]["profile"]["name"] == "Ana" and payload["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    statuses = [json.loads(f[b"p"])["status"]["status"] for _, f in r.xrange(Keys(settings.prefix).stream(out))]
    assert statuses == ["delivered", "read"]


async def test_whatsapp_redelivery_stores_nothing_new_and_still_gets_200(wa, r, settings):
    """Meta sends the same notification again: 200, and Redis holds exactly what it held."""
    body = sample()
    first = await post_signed(wa, body, sign(SECRET, body))
    before = snapshot(r, Keys(settings.prefix))
    again = await post_signed(wa, body, sign(SECRET, body))
    assert again.status_code == 200 and again.json()["queued"] == 0
    assert again.json()["ids"] == first.json()["ids"]
    assert snapshot(r, Keys(settings.prefix)) == before


@pytest.mark.parametrize("signature", [None, "sha256=deadbeef", "sha1=abc", sign("other-secret", sample())])
async def test_whatsapp_bad_or_missing_signature_is_401_and_stores_nothing(wa, r, settings, signature):
    """No signature, a wrong one, or one made with another secret → 401, Redis unchanged."""
    before = snapshot(r, Keys(settings.prefix))
    answer = await post_signed(wa, sample(), signature)
    assert answer.status_code == 401 and "error" in answer.json()
    assert snapshot(r, Keys(settings.prefix)) == before


async def test_whatsapp_notification_without_messages_or_statuses_is_200_and_stores_nothing(wa, r, settings):
    """Other fields (e.g. account updates) are acknowledged and ignored."""
    body = notification(field="account_update")
    before = snapshot(r, Keys(settings.prefix))
    answer = await post_signed(wa, body, sign(SECRET, body))
    assert answer.status_code == 200 and answer.json() == {"queued": 0, "ids": []}
    assert snapshot(r, Keys(settings.prefix)) == before


@pytest.mark.parametrize(("body", "field"), [
    (b'{"object": "whatsapp_business_account"}', "entry"),
    (b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "id": "w"}]}}]}]}',
     "entry[0].changes[0].value.metadata"),
    (json.dumps({"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": "1"},
                                                   "messages": [{"id": "w"}]}}]}]}).encode(),
     "entry[0].changes[0].value.messages[0].from"),
    (json.dumps({"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": "1"},
                                                   "statuses": [{"id": "w", "status": "read"}]}}]}]}).encode(),
     "entry[0].changes[0].value.statuses[0].recipient_id"),
])
async def test_whatsapp_payload_of_the_wrong_shape_is_400_naming_the_field(wa, r, settings, body, field):
    """A notification that is not the documented shape → 400 with the field named; nothing stored."""
    before = snapshot(r, Keys(settings.prefix))
    answer = await post_signed(wa, body, sign(SECRET, body))
    assert answer.status_code == 400 and answer.json()["field"] == field
    assert snapshot(r, Keys(settings.prefix)) == before


# --- authentication ------------------------------------------------------------------------------


def signed_headers(body: bytes, timestamp: int | None = None, secret: str = SIGNING) -> dict:
    signed = f"{timestamp}.".encode() + body if timestamp is not None else body
    headers = {"content-type": "application/json",
               "x-drip-signature": "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}
    if timestamp is not None:
        headers["x-drip-timestamp"] = str(timestamp)
    return headers


BODY = json.dumps({"queue": "q", "payload": 1}).encode()


# Header builders, called when the test runs (a timestamp must be fresh then, not at collection).
REFUSED = [
    lambda: {"content-type": "application/json"},
    lambda: {"content-type": "application/json", "authorization": "Bearer wrong"},
    lambda: {"content-type": "application/json", "authorization": "Basic dG9rLTEyMw=="},
    lambda: signed_headers(BODY, secret="wrong-secret"),
    lambda: signed_headers(BODY, timestamp=int(time.time()) - 600),
    lambda: {**signed_headers(BODY, timestamp=int(time.time())), "x-drip-timestamp": str(int(time.time()) + 1)},
    lambda: {"content-type": "application/json", "authorization": f"Bearer {TOKEN}", "x-drip-timestamp": "1"},
]
ACCEPTED = [
    lambda: {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"},
    lambda: {"content-type": "application/json", "authorization": "bearer other-token"},
    lambda: signed_headers(BODY),
    lambda: signed_headers(BODY, timestamp=int(time.time())),
]


@pytest.mark.parametrize("make_headers", REFUSED)
async def test_auth_on_refuses_what_is_not_proven_and_writes_nothing(secured, r, settings, make_headers):
    """Missing or wrong bearer, wrong HMAC, a stale or altered timestamp → 401, and not a key written."""
    before = snapshot(r, Keys(settings.prefix))
    answer = await secured.post("/enqueue", content=BODY, headers=make_headers())
    assert answer.status_code == 401 and "error" in answer.json()
    assert snapshot(r, Keys(settings.prefix)) == before


@pytest.mark.parametrize("make_headers", ACCEPTED)
async def test_auth_on_accepts_a_token_or_a_signature(secured, make_headers):
    """A known bearer token, or a right signature (timestamped or not) → 202."""
    assert (await secured.post("/enqueue", content=BODY, headers=make_headers())).status_code == 202


async def test_contact_endpoint_takes_the_shared_token_in_a_header_or_the_query(secured):
    """GoHighLevel cannot sign: X-Drip-Token or ?token= with a known token is accepted there (only there)."""
    contact_body = {"location": {"id": "1"}, "workflow": {"id": "w"}, "contact_id": "c"}
    by_header = await secured.post("/api/enqueue-contact", json=contact_body, headers={"x-drip-token": TOKEN})
    by_query = await secured.post(f"/api/enqueue-contact?token={TOKEN}", json=contact_body)
    wrong = await secured.post("/api/enqueue-contact?token=nope", json=contact_body)
    elsewhere = await secured.post(f"/enqueue?token={TOKEN}", content=BODY, headers={"content-type": "application/json"})
    assert [by_header.status_code, by_query.status_code, wrong.status_code, elsewhere.status_code] == [202, 202, 401, 401]


def test_require_auth_without_credentials_refuses_to_start():
    """DRIP_REQUIRE_AUTH with neither tokens nor a signing secret is a configuration error."""
    from drip.core.errors import ConfigError

    with pytest.raises(ConfigError, match="DRIP_API_TOKENS"):
        config.load(require_auth=True)


# --- limits ----------------------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after_and_spares_other_clients(settings):
    """A client over its bucket gets 429 with Retry-After; another client (token) still gets through."""
    s = settings.model_copy(update={"api_tokens": "a-token,b-token", "rate_limit": "1/h:3"})
    async for client in client_for(s):
        def as_(token):
            return {"content-type": "application/json", "authorization": f"Bearer {token}"}

        answers = [await client.post("/enqueue", content=BODY, headers=as_("a-token")) for _ in range(4)]
        other = await client.post("/enqueue", content=BODY, headers=as_("b-token"))
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert int(answers[-1].headers["retry-after"]) > 0 and "error" in answers[-1].json()
    assert other.status_code == 202


async def test_json_nested_too_deep_is_refused(settings, r):
    """A payload nested deeper than 64 levels → 400, nothing stored (and never a 500)."""
    async for client in client_for(settings):
        deep = b'{"queue":"q","payload":' + b"[" * 70 + b"]" * 70 + b"}"
        very_deep = b'{"queue":"q","payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        answers = [await client.post("/enqueue", content=b, headers={"content-type": "application/json"})
                   for b in (deep, very_deep)]
    assert [a.status_code for a in answers] == [400, 400]
    assert r.xlen(Keys(settings.prefix).stream("q")) == 0


async def test_too_many_messages_in_one_request_is_400_naming_the_array(settings, r):
    """More than DRIP_MAX_BATCH messages in one request → 400 naming the array (maxItems), nothing stored."""
    s = settings.model_copy(update={"max_batch": 10})
    async for client in client_for(s):
        answer = await client.post("/enqueue", json=[{"queue": "q", "payload": i} for i in range(11)])
        webhook = await client.post("/webhook", json={"messages": [{"from": "q"}] * 11})
    assert (answer.status_code, answer.json().get("field", "")) == (400, "")
    assert (webhook.status_code, webhook.json()["field"]) == (400, "messages")
    assert r.xlen(Keys(settings.prefix).stream("q")) == 0


# --- OpenAPI -------------------------------------------------------------------------------------


async def test_openapi_describes_every_endpoint_from_the_validating_types(settings):
    """/openapi.json lists every route with its body and answers; its Enqueue schema is the decoder's."""
    import msgspec

    from drip.intake.enqueue import EnqueueItem

    async for client in client_for(settings):
        document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]) == {"/enqueue", "/api/enqueue-contact", "/webhook", "/hooks/whatsapp",
                                      "/messages/{id}", "/healthz", "/readyz", "/openapi.json"}
    schemas = document["components"]["schemas"]
    (_, components) = msgspec.json.schema_components([EnqueueItem], ref_template="#/components/schemas/{name}")
    for name in ("queue", "payload", "dedup_id"):
        assert schemas["EnqueueItem"]["properties"][name] == components["EnqueueItem"]["properties"][name]
    assert set(schemas["EnqueueItem"]["required"]) == {"queue", "payload"}
    assert schemas["EnqueueItem"]["additionalProperties"] is False
    assert "429" in document["paths"]["/enqueue"]["post"]["responses"]


async def test_openapi_writes_in_the_bounds_of_the_settings(settings):
    """DRIP_MAX_BATCH and DRIP_MAX_HORIZON appear as maxItems and maximum where the checks apply them."""
    s = settings.model_copy(update={"max_batch": 7, "max_horizon": 3600})
    async for client in client_for(s):
        document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert [b["maxItems"] for b in body["anyOf"] if b.get("type") == "array"] == [7]
    schemas = document["components"]["schemas"]
    assert schemas["WebhookBody"]["properties"]["messages"]["maxItems"] == 7
    delay = schemas["EnqueueItem"]["properties"]["delay"]["anyOf"]
    assert [b["maximum"] for b in delay if b.get("type") == "number"] == [3600]


async def test_openapi_declares_security_only_when_authentication_is_on(settings):
    """With auth off nothing is declared; with DRIP_API_TOKENS the webhooks and cancellation take a bearer token."""
    async for client in client_for(settings):
        open_document = (await client.get("/openapi.json")).json()
    assert open_document["components"]["securitySchemes"] == {}
    assert all(op.get("security") == [] for path in open_document["paths"].values() for op in path.values())
    async for client in client_for(settings.model_copy(update={"api_tokens": TOKEN})):
        document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert paths["/enqueue"]["post"]["security"] == [{"bearer": []}]
    assert paths["/messages/{id}"]["delete"]["security"] == [{"bearer": []}]
    assert paths["/hooks/whatsapp"]["post"]["security"] == []  # no DRIP_WHATSAPP_APP_SECRET: not checked
    assert "401" in paths["/enqueue"]["post"]["responses"]
    assert "401" not in open_document["paths"]["/enqueue"]["post"]["responses"]


async def test_cancelling_takes_a_bearer_token_when_authentication_is_on(settings):
    """DELETE /messages/{id} without a token is 401 once DRIP_API_TOKENS is set; with one it is answered."""
    missing = "/messages/00000000-0000-7000-8000-000000000000"
    async for client in client_for(settings.model_copy(update={"api_tokens": TOKEN})):
        assert (await client.delete(missing)).status_code == 401
        answer = await client.delete(missing, headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("TRACE", "/enqueue", "POST"), ("PUT", "/hooks/whatsapp", "GET, HEAD, POST"), ("POST", "/healthz", "GET, HEAD"),
    ("GET", "/messages/x", "DELETE"),
])
async def test_a_method_the_path_lacks_is_405_with_allow(settings, method, path, allow):
    """405 answers carry `Allow` with every method of the path (RFC 9110)."""
    async for client in client_for(settings):
        answer = await client.request(method, path)
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == set(allow.split(", "))


async def test_enqueue_refuses_an_unknown_field_naming_it(settings, r):
    """A misspelt field (`dealy`) is 400 naming it, and nothing is stored: it must not run at once."""
    async for client in client_for(settings):
        answer = await client.post("/enqueue", json={"queue": "q", "payload": 1, "dealy": 60})
        array = await client.post("/enqueue", json=[{"queue": "q", "payload": 1}, {"queue": "q", "payload": 1, "x": 1}])
    assert (answer.status_code, answer.json()["field"]) == (400, "dealy")
    assert (array.status_code, array.json()["field"]) == (400, "[1].x")
    assert r.xlen(Keys(settings.prefix).stream("q")) == 0


async def test_no_log_line_carries_a_secret_or_a_payload(settings):
    """Accepted and refused requests alike: the logs hold neither tokens, secrets, signatures nor payload text."""
    from structlog.testing import capture_logs

    s = settings.model_copy(update={"api_tokens": TOKEN, "signing_secret": SIGNING, "whatsapp_app_secret": SECRET})
    body = json.dumps({"queue": "q", "payload": {"text": "very private words"}}).encode()
    with capture_logs() as events:
        async for client in client_for(s):
            await client.post("/enqueue", content=body,
                              headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
            await client.post("/enqueue", content=body,
                              headers={"content-type": "application/json", "authorization": "Bearer wrong-guess"})
            await client.post("/enqueue", content=body, headers=signed_headers(body))
            wa_body = sample()
            await post_signed(client, wa_body, sign(SECRET, wa_body))
            await post_signed(client, wa_body, "sha256=" + "0" * 64)
    logged = json.dumps(events, default=str)
    assert events, "the requests should have been logged"
    for secret in (TOKEN, SIGNING, SECRET, "wrong-guess", "very private words", "hola",
                   signed_headers(body)["x-drip-signature"][7:]):
        assert secret not in logged, f"{secret!r} appears in the logs"
