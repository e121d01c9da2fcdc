"""The webhook in-process (ASGI) against real Redis: shapes, errors, and nothing stored on error."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
import redis

from drip.core import settings as config
from drip.core.keys import Keys, shard_of
from drip.core.messages import iso
from drip.intake.app import create_app
from tests.helpers import free_port, redis_server_binary, snapshot, wait_for

pytestmark = pytest.mark.anyio

SEED_CONTACT = {
    "contact_id": "test123",
    "location": {"id": "456"},
    "workflow": {"id": "humanizer"},
    "customData": {"TimeFrame": "60 to 300"},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _client(settings: config.Settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drip") as client:
            yield client


@pytest.fixture
async def client(settings):
    async for c in _client(settings):
        yield c


def stream_ids(r: redis.Redis, keys: Keys, queue: str) -> list[str]:
    return [fields[b"id"].decode() for _, fields in r.xrange(keys.stream(queue))]


async def test_enqueue_one_answers_202_with_id_queue_run_at(client, r, settings):
    """A single message is stored in its queue's stream and answered with id, queue and run_at."""
    response = await client.post("/enqueue", json={"queue": "orders:7", "payload": {"n": 1}})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "queue", "run_at"}
    assert body["queue"] == "orders:7"
    assert body["run_at"].endswith("Z")
    keys = Keys(settings.prefix)
    assert stream_ids(r, keys, "orders:7") == [body["id"]]
    assert r.zscore(keys.ready(shard_of("orders:7")), "orders:7") is not None


async def test_enqueue_array_is_stored_in_order_and_answers_an_array(client, r, settings):
    """An array is stored in one call, in order, and answered with one object per message."""
    items = [{"queue": "a" if i % 2 else "b", "payload": i} for i in range(10)]
    response = await client.post("/enqueue", json=items)
    assert response.status_code == 202
    answer = response.json()
    assert [a["queue"] for a in answer] == [i["queue"] for i in items]
    keys = Keys(settings.prefix)
    assert stream_ids(r, keys, "a") == [a["id"] for a in answer if a["queue"] == "a"]
    assert stream_ids(r, keys, "b") == [a["id"] for a in answer if a["queue"] == "b"]


async def test_payload_is_kept_byte_for_byte(client, r, settings):
    """The payload reaches Redis as sent (any JSON value, unicode included)."""
    payload = {"text": "héllo 👋", "list": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
    response = await client.post("/enqueue", json={"queue": "q", "payload": payload})
    assert response.status_code == 202
    (_, fields), = r.xrange(Keys(settings.prefix).stream("q"))
    assert json.loads(fields[b"p"]) == payload


async def test_dedup_id_returns_the_original_and_stores_nothing_new(client, r, settings):
    """The same dedup_id twice gives the first message's id and one stored message."""
    first = (await client.post("/enqueue", json={"queue": "q", "payload": 1, "dedup_id": "x"})).json()
    second = (await client.post("/enqueue", json={"queue": "q", "payload": 2, "dedup_id": "x"})).json()
    assert second["id"] == first["id"] and second["duplicate"] is True
    assert stream_ids(r, Keys(settings.prefix), "q") == [first["id"]]


async def test_seed_contact_lands_in_location_workflow_queue(client, r, settings):
    """The seed's GoHighLevel body is scheduled in location:<id>:workflow:<id>, 60-300 s ahead, whole body kept."""
    response = await client.post("/api/enqueue-contact", json=SEED_CONTACT)
    assert response.status_code == 202
    body = response.json()
    assert body["queue"] == "location:456:workflow:humanizer"
    keys = Keys(settings.prefix)
    ((member, run_at),) = r.zrange(keys.delayed(body["queue"]), 0, -1, withscores=True)
    assert member.decode().endswith(body["id"])
    now = redis_now_ms(r)
    assert now + 59_000 <= run_at <= now + 300_000
    assert iso(int(run_at)) == body["run_at"]
    stored = r.hget(keys.bodies(body["queue"]), member).split(b"\n", 1)[1]
    assert json.loads(stored) == SEED_CONTACT


async def test_contact_without_timeframe_is_queued_at_once(client, r, settings):
    """A contact with no TimeFrame (and no DRIP_DEFAULT_TIMEFRAME) goes straight into its stream."""
    contact = {k: v for k, v in SEED_CONTACT.items() if k != "customData"}
    body = (await client.post("/api/enqueue-contact", json=contact)).json()
    assert stream_ids(r, Keys(settings.prefix), body["queue"]) == [body["id"]]


def redis_now_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


async def test_webhook_batch_queues_each_message_by_sender(client, r, settings):
    """/webhook splits messages by `from`, else `conversation_id`, else the default queue."""
    batch = {
        "messages": [
            {"from": "5215550001", "text": "a"},
            {"conversation_id": "conv-9", "text": "b"},
            {"from": "5215550001", "text": "c"},
            {"text": "d"},
        ],
        "metadata": {"source": "wa"},
    }
    response = await client.post("/webhook", json=batch)
    assert response.status_code == 202
    body = response.json()
    assert body["queued"] == 4 and len(body["ids"]) == 4
    keys = Keys(settings.prefix)
    assert stream_ids(r, keys, "5215550001") == [body["ids"][0], body["ids"][2]]
    assert stream_ids(r, keys, "conv-9") == [body["ids"][1]]
    assert stream_ids(r, keys, "webhook:default") == [body["ids"][3]]
    (_, fields), = r.xrange(keys.stream("conv-9"))
    assert json.loads(fields[b"p"]) == {"message": batch["messages"][1], "metadata": {"source": "wa"}}


async def test_health_and_readiness(client):
    """/healthz answers while the process is up; /readyz when Redis answers."""
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).json() == {"status": "ready"}


BAD = [
    ("/enqueue", b"{not json", "application/json", 400, ""),
    ("/enqueue", b'{"payload": 1}', "application/json", 400, "queue"),
    ("/enqueue", b'{"queue": 5, "payload": 1}', "application/json", 400, "queue"),
    ("/enqueue", b'{"queue": "q"}', "application/json", 400, "payload"),
    ("/enqueue", b'{"queue": "q", "payload": 1, "delay": "soon"}', "application/json", 400, "delay"),
    ("/enqueue", b'{"queue": "q", "payload": 1, "delay": -1}', "application/json", 400, "delay"),
    ("/enqueue", b'{"queue": "", "payload": 1}', "application/json", 400, "queue"),
    ("/enqueue", b'{"queue": "a\\u0001b", "payload": 1}', "application/json", 400, "queue"),
    ("/enqueue", b'[{"queue": "ok", "payload": 1}, {"queue": 2, "payload": 1}]', "application/json", 400, "[1].queue"),
    ("/enqueue", b"[]", "application/json", 400, ""),
    ("/enqueue", b'"just a string"', "application/json", 400, ""),
    ("/enqueue", b'{"queue": "q", "payload": 1}', "text/plain", 415, "Content-Type"),
    ("/enqueue", b'{"queue": "q", "payload": 1}', None, 415, "Content-Type"),
    ("/enqueue", b'{"queue": "q", "payload": "\xff\xfe"}', "application/json", 400, ""),
    ("/api/enqueue-contact", b'{"workflow": {"id": "w"}, "contact_id": "c"}', "application/json", 400, "location.id"),
    ("/api/enqueue-contact", b'{"location": {}, "workflow": {"id": "w"}}', "application/json", 400, "location.id"),
    ("/api/enqueue-contact", b'{"location": {"id": "1"}, "workflow": {"id": "w"}}', "application/json", 400, "contact_id"),
    ("/api/enqueue-contact", b'{"location": {"id": "1"}, "workflow": {"id": []}}', "application/json", 400, "workflow.id"),
    ("/webhook", b'{"metadata": {}}', "application/json", 400, "messages"),
    ("/webhook", b'{"messages": {}}', "application/json", 400, "messages"),
    ("/webhook", b'{"messages": [{"from": "1"}, 7]}', "application/json", 400, "messages[1]"),
    ("/webhook", b'{"messages": [{"from": {"x": 1}}]}', "application/json", 400, "messages[0].from"),
]


@pytest.mark.parametrize(("path", "body", "content_type", "status", "field"), BAD)
async def test_bad_input_is_refused_with_the_field_and_stores_nothing(client, r, settings, path, body, content_type, status, field):
    """Malformed or mistyped input answers 4xx JSON naming the field, and Redis is unchanged."""
    keys = Keys(settings.prefix)
    before = snapshot(r, keys)
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == status
    answer = response.json()
    assert answer["error"]
    assert answer.get("field", "") == field
    assert snapshot(r, keys) == before


async def test_body_over_max_body_is_413_and_stores_nothing(prefix, database_url, r):
    """A body larger than DRIP_MAX_BODY answers 413, declared or streamed without a length."""
    from tests.conftest import REDIS_URL

    settings = config.load(prefix=prefix, redis_url=REDIS_URL, database_url=database_url, max_body=1000)
    keys = Keys(prefix)
    big = json.dumps({"queue": "q", "payload": "x" * 2000}).encode()

    async def chunks():
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    async for client in _client(settings):
        declared = await client.post("/enqueue", content=big, headers={"content-type": "application/json"})
        streamed = await client.post("/enqueue", content=chunks(), headers={"content-type": "application/json"})
        fits = await client.post("/enqueue", json={"queue": "q", "payload": "x" * 100})
    assert declared.status_code == 413 and streamed.status_code == 413
    assert "error" in declared.json()
    assert fits.status_code == 202
    assert len(r.xrange(keys.stream("q"))) == 1


async def test_unknown_route_and_wrong_method_answer_json(client):
    """404 and 405 are JSON errors like every other refusal."""
    missing = await client.get("/nope")
    wrong = await client.get("/enqueue")
    assert missing.status_code == 404 and "error" in missing.json()
    assert wrong.status_code == 405 and "error" in wrong.json()


async def test_redis_stopped_answers_503(prefix, database_url, tmp_path):
    """With its Redis stopped the webhook answers 503 for every enqueue endpoint, and /readyz fails."""
    port = free_port()
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: _pings(url), 10, "a private redis-server")
        settings = config.load(prefix=prefix, redis_url=url, database_url=database_url)
        async for client in _client(settings):
            assert (await client.post("/enqueue", json={"queue": "q", "payload": 1})).status_code == 202
            server.terminate()
            server.wait()
            answers = [
                await client.post("/enqueue", json={"queue": "q", "payload": 1}),
                await client.post("/api/enqueue-contact", json=SEED_CONTACT),
                await client.post("/webhook", json={"messages": [{"from": "1"}]}),
                await client.get("/readyz"),
            ]
            assert [a.status_code for a in answers] == [503, 503, 503, 503]
            assert all("error" in a.json() for a in answers)
    finally:
        server.kill()
        server.wait()


def _pings(url: str) -> bool:
    try:
        return redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        return False


async def test_delay_and_run_at_schedule_the_message(client, r, settings):
    """A delay or a future run_at puts the message in its queue's delayed set, with the run_at answered."""
    keys = Keys(settings.prefix)
    now = redis_now_ms(r)
    delayed = (await client.post("/enqueue", json={"queue": "q", "payload": 1, "delay": 60})).json()
    at = (await client.post("/enqueue", json={"queue": "q", "payload": 2, "run_at": (now + 120_000) / 1000})).json()
    scheduled = dict(r.zrange(keys.delayed("q"), 0, -1, withscores=True))
    assert {m.decode()[16:]: int(s) for m, s in scheduled.items()} == {
        delayed["id"]: _ms(delayed["run_at"]), at["id"]: _ms(at["run_at"])}
    assert now + 60_000 <= _ms(delayed["run_at"]) <= redis_now_ms(r) + 60_000
    assert stream_ids(r, keys, "q") == []


def _ms(iso_text: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp() * 1000)


async def test_delete_cancels_a_scheduled_message(client, r, settings):
    """DELETE /messages/{id}: 200 and gone from Redis; again 409; an unknown id 404."""
    body = (await client.post("/enqueue", json={"queue": "q", "payload": 1, "delay": 60})).json()
    gone = await client.delete(f"/messages/{body['id']}")
    assert gone.status_code == 200
    assert gone.json() == {"id": body["id"], "queue": "q", "status": "cancelled"}
    assert r.zcard(Keys(settings.prefix).delayed("q")) == 0
    again = await client.delete(f"/messages/{body['id']}")
    assert again.status_code == 409 and "cancelled" in again.json()["error"]
    assert (await client.delete("/messages/0190c3c0-0000-7000-8000-000000000000")).status_code == 404
    assert (await client.delete("/messages/nonsense")).status_code == 404


@pytest.mark.parametrize("timeframe", ["soon", "5 to", "-5", "1d"])
async def test_bad_timeframe_is_refused_and_stores_nothing(client, r, settings, timeframe):
    """An unreadable TimeFrame (or min > max) answers 400 naming customData.TimeFrame; Redis is unchanged."""
    before = snapshot(r, Keys(settings.prefix))
    body = {**SEED_CONTACT, "customData": {"TimeFrame": timeframe}}
    response = await client.post("/api/enqueue-contact", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == "customData.TimeFrame"
    assert snapshot(r, Keys(settings.prefix)) == before


async def test_default_timeframe_drips_contacts_that_carry_none(prefix, database_url, r):
    """With DRIP_DEFAULT_TIMEFRAME set, a contact without TimeFrame is scheduled within it."""
    from tests.conftest import REDIS_URL

    settings = config.load(prefix=prefix, redis_url=REDIS_URL, database_url=database_url, default_timeframe="1m to 2m")
    contact = {k: v for k, v in SEED_CONTACT.items() if k != "customData"}
    async for client in _client(settings):
        now = redis_now_ms(r)
        body = (await client.post("/api/enqueue-contact", json=contact)).json()
    run_at = r.zscore(Keys(prefix).delayed(body["queue"]), r.zrange(Keys(prefix).delayed(body["queue"]), 0, 0)[0])
    assert now + 60_000 <= run_at <= redis_now_ms(r) + 120_000


async def test_dedup_fields_make_a_contact_posted_twice_one_message(prefix, database_url, r):
    """With DRIP_DEDUP_FIELDS=contact_id the same contact posted twice to a workflow is stored once."""
    from tests.conftest import REDIS_URL

    settings = config.load(prefix=prefix, redis_url=REDIS_URL, database_url=database_url, dedup_fields="contact_id")
    contact = {k: v for k, v in SEED_CONTACT.items() if k != "customData"}
    other = {**contact, "contact_id": "someone-else"}
    async for client in _client(settings):
        first = (await client.post("/api/enqueue-contact", json=contact)).json()
        again = (await client.post("/api/enqueue-contact", json=contact)).json()
        third = (await client.post("/api/enqueue-contact", json=other)).json()
    assert again["id"] == first["id"] and again["duplicate"] is True
    assert stream_ids(r, Keys(prefix), first["queue"]) == [first["id"], third["id"]]


async def test_marketplace_contact_lands_in_its_workflow_queue_with_its_timeframe(client, r, settings):
    """The marketplace action (ids in extras, "25 to 120 " TimeFrame) is scheduled 25-120 s ahead in
    location:<id>:workflow:<id>."""
    body = {"data": {"TimeFrame": "25 to 120 ", "locationId": "", "workflowId": "", "contactid": "c1", "apiKey": "k"},
            "extras": {"locationId": "L9", "contactId": "c1", "workflowId": "W9", "companyId": "co"},
            "meta": {"key": "drip", "version": "1"}, "isMarketplaceAction": True}
    now = redis_now_ms(r)
    answer = (await client.post("/api/enqueue-contact", json=body)).json()
    assert answer["queue"] == "location:L9:workflow:W9"
    ((_, run_at),) = r.zrange(Keys(settings.prefix).delayed(answer["queue"]), 0, -1, withscores=True)
    assert now + 25_000 <= run_at <= redis_now_ms(r) + 120_000
