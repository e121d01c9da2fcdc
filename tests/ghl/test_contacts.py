"""GoHighLevel contacts in every format real senders use: workflow webhook, legacy, marketplace action."""

from __future__ import annotations

import json

import pytest

from drip.core.errors import InvalidInput
from drip.core.inbound import Rules
from drip.core.redact import redact_json
from drip.core.timing import NOW, Timing
from drip.ghl import contacts

NOW_MS = 1_795_000_000_000
RULES = Rules(max_horizon_s=30 * 86400, default_timeframe=NOW)

SEED = {"contact_id": "test123", "location": {"id": "456"}, "workflow": {"id": "humanizer"},
        "customData": {"TimeFrame": "60 to 300"}}

#: The marketplace custom action, as it is really sent: data.workflowId empty, extras holding the ids.
MARKETPLACE = {
    "data": {"TimeFrame": "25 to 120 ", "locationId": "", "workflowId": "", "contactid": "c-9",
             "apiKey": "pit-secret-123"},
    "extras": {"locationId": "L77", "contactId": "c-9", "workflowId": "wf-3", "companyId": "co-1"},
    "meta": {"key": "drip-release", "version": "2.1"},
    "isMarketplaceAction": True,
}


def parse(body: dict | bytes, rules: Rules = RULES):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return contacts.parse(raw, NOW_MS, rules)


def invalid(body: dict | bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(body)
    return caught.value


def test_seed_body_routes_by_location_and_workflow():
    """The seed's workflow webhook queues on location:<id>:workflow:<id>, whole body kept, TimeFrame read."""
    body = json.dumps(SEED).encode()
    m = parse(body)
    assert m.queue == "location:456:workflow:humanizer"
    assert (m.location_id, m.workflow_id, m.contact_id) == ("456", "humanizer", "test123")
    assert m.payload == body and m.timing == Timing("spread", 60_000, 300_000)
    assert m.timing_field == "customData.TimeFrame"


def test_marketplace_action_takes_ids_from_extras_when_data_is_empty():
    """data.workflowId "" and data.locationId "" fall back to extras; "25 to 120 " (trailing space) is read."""
    m = parse(MARKETPLACE)
    assert m.queue == "location:L77:workflow:wf-3"
    assert (m.location_id, m.workflow_id, m.contact_id) == ("L77", "wf-3", "c-9")
    assert m.timing == Timing("spread", 25_000, 120_000) and m.timing_field == "data.TimeFrame"


def test_marketplace_data_ids_win_when_present():
    """When data carries the ids they are used."""
    body = {**MARKETPLACE, "data": {**MARKETPLACE["data"], "locationId": "L1", "workflowId": "W1"}}
    assert parse(body).queue == "location:L1:workflow:W1"


def test_legacy_form_with_customdata_api_key():
    """The legacy workflow webhook (customData.api_key) is read like the webhook action."""
    body = {**SEED, "customData": {"TimeFrame": "5 to 10", "api_key": "legacy-key"}}
    contact, _ = contacts.read(contacts.decode(json.dumps(body).encode(), contacts.ContactBody))
    assert (contact.api_key, contact.timeframe, contact.queue) == ("legacy-key", "5 to 10",
                                                                   "location:456:workflow:humanizer")


def test_missing_workflow_id_falls_back_to_the_location_default_queue():
    """No workflow id (or an empty one) → location:<id>:workflow:default."""
    assert parse({"contact_id": "c", "location": {"id": "L"}}).queue == "location:L:workflow:default"
    body = {**MARKETPLACE, "extras": {**MARKETPLACE["extras"], "workflowId": ""}}
    assert parse(body).queue == "location:L77:workflow:default"


def test_numeric_ids_are_accepted():
    """Numeric ids become their decimal strings."""
    m = parse(b'{"contact_id":7,"location":{"id":456},"workflow":{"id":9}}')
    assert (m.queue, m.contact_id) == ("location:456:workflow:9", "7")


@pytest.mark.parametrize(("body", "field"), [
    ({"workflow": {"id": "w"}, "contact_id": "c"}, "location.id"),
    ({"location": {}, "workflow": {"id": "w"}, "contact_id": "c"}, "location.id"),
    ({"location": {"id": ""}, "workflow": {"id": "w"}, "contact_id": "c"}, "location.id"),
    ({"location": {"id": "l"}, "workflow": {"id": "w"}}, "contact_id"),
    ({"location": {"id": ["l"]}, "workflow": {"id": "w"}, "contact_id": "c"}, "location.id"),
    ({**MARKETPLACE, "extras": {"contactId": "c"}}, "extras.locationId"),
    ({**MARKETPLACE, "data": {"TimeFrame": "1"}, "extras": {"locationId": "L"}}, "extras.contactId"),
    ({"location": {"id": "1"}, "workflow": {"id": "a\u0001"}, "contact_id": "c"}, "workflow.id"),
])
def test_missing_or_bad_ids_are_400_naming_the_field(body, field):
    """A missing, empty or mistyped id is refused, naming the field of the format it came in."""
    assert invalid(body).field == field


@pytest.mark.parametrize(("timeframe", "low", "high"), [
    ("60 to 300", 60_000, 300_000), ("60-300", 60_000, 300_000), ("1m to 5m", 60_000, 300_000),
    ("0.05 to 0.1", 50, 100), ("120", 120_000, 120_000), (120, 120_000, 120_000), ("25 to 120 ", 25_000, 120_000),
])
def test_timeframe_is_a_spread_in_ms(timeframe, low, high):
    """customData.TimeFrame (text or number, seconds unless s/m/h) becomes a spread in ms."""
    assert parse({**SEED, "customData": {"TimeFrame": timeframe}}).timing == Timing("spread", low, high)


@pytest.mark.parametrize("custom", [{}, {"TimeFrame": None}, {"TimeFrame": ""}, {"TimeFrame": "  "}])
def test_no_timeframe_uses_the_default(custom):
    """Without a (non-blank) TimeFrame the contact gets DRIP_DEFAULT_TIMEFRAME (rules.default_timeframe)."""
    default = Timing("spread", 1_000, 2_000)
    assert parse({**SEED, "customData": custom}, Rules(default_timeframe=default)).timing == default


@pytest.mark.parametrize(("body", "field"), [
    ({**SEED, "customData": {"TimeFrame": "soon"}}, "customData.TimeFrame"),
    ({**SEED, "customData": {"TimeFrame": "60 to 3000000"}}, "customData.TimeFrame"),
    ({**MARKETPLACE, "data": {**MARKETPLACE["data"], "TimeFrame": "5 to"}}, "data.TimeFrame"),
])
def test_bad_timeframe_names_the_field(body, field):
    """An unreadable TimeFrame, min > max, or one beyond DRIP_MAX_HORIZON is refused naming its field."""
    assert invalid(body).field == field


def test_redact_removes_every_api_key():
    """Credentials anywhere in a payload are replaced; everything else is kept."""
    body = {**MARKETPLACE, "customData": {"api_key": "k2", "other": 1}}
    raw = redact_json(json.dumps(body).encode())
    assert b"pit-secret-123" not in raw and b"k2" not in raw
    cleaned = json.loads(raw)
    assert cleaned["data"]["apiKey"] == "[redacted]" and cleaned["customData"]["other"] == 1
    plain = json.dumps(SEED).encode()
    assert redact_json(plain) is plain


def test_an_id_written_as_a_whole_float_is_the_integer():
    """JSON's 456.0 is the integer 456: the queue reads location:456, as for 456."""
    assert parse({**SEED, "location": {"id": 456.0}}).queue == parse({**SEED, "location": {"id": 456}}).queue


@pytest.mark.parametrize("location", [None, {"id": None}, {"id": "  "}])
def test_a_null_or_blank_location_id_is_refused_naming_it(location):
    """location null, location.id null or blank: 400 naming location.id (the description requires one)."""
    assert invalid({**SEED, "location": location}).field == "location.id"


def test_an_overlong_location_id_is_refused_naming_it():
    """A location id past MAX_ID_LENGTH is refused (both ids must fit one queue name)."""
    assert invalid({**SEED, "location": {"id": "x" * (contacts.MAX_ID_LENGTH + 1)}}).field == "location.id"


def test_a_tiny_numeric_timeframe_is_read_not_refused():
    """TimeFrame 1e-05 (a number) reads as 0.00001 s, not as the unreadable text '1e-05'."""
    assert parse({**SEED, "customData": {"TimeFrame": 1e-05}}).timing.kind == "spread"
