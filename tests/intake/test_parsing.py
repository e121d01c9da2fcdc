"""Message ids, timestamps, and the validation of the enqueue and webhook shapes, timing included."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from drip.core.errors import InvalidInput
from drip.core.inbound import MAX_QUEUE_LENGTH, Rules
from drip.core.messages import iso, new_id, now_ms
from drip.core.timing import NOW, Timing
from drip.intake.enqueue import parse_enqueue
from drip.intake.webhook import DEFAULT_WEBHOOK_QUEUE, parse_webhook

#: The clock of every parse: 2026-11-18T11:06:40Z, a few days before the run_at values below.
NOW_MS = 1_795_000_000_000
RULES = Rules(max_horizon_s=30 * 86400, default_timeframe=NOW)



def enqueue(body: bytes, rules: Rules = RULES):
    return parse_enqueue(body, NOW_MS, rules)


def invalid(parse, body: bytes) -> InvalidInput:
    """The InvalidInput that parsing `body` raises."""
    with pytest.raises(InvalidInput) as caught:
        parse(body)
    return caught.value


def next_millisecond(after: int, timeout_s: float = 1.0) -> None:
    """Spin until the clock has passed `after` (ms); fail past the deadline."""
    deadline = time.monotonic() + timeout_s
    while now_ms() <= after:
        assert time.monotonic() < deadline, "the clock did not advance"


# --- ids and times ------------------------------------------------------------


def test_new_id_is_a_uuid_version_7():
    """new_id() is a canonical lowercase UUIDv7 of the RFC 4122 variant."""
    value = new_id()
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == value


def test_new_id_carries_its_creation_time():
    """The top 48 bits of the id are the Unix time in ms at which it was made."""
    before = now_ms()
    value = new_id()
    after = now_ms()
    assert before <= uuid.UUID(value).int >> 80 <= after


def test_new_ids_are_unique():
    """10 000 ids in a row are all different (ids made in the same ms differ by their random bits)."""
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_new_ids_sort_by_creation_time_across_milliseconds():
    """Ids made in a later millisecond sort after every id of an earlier one."""
    batches = []
    for _ in range(3):
        batches.append([new_id() for _ in range(50)])
        next_millisecond(now_ms())
    for earlier, later in zip(batches, batches[1:]):
        assert max(earlier) < min(later)


def test_iso_of_the_epoch():
    """iso(0) is the epoch in ISO-8601 UTC with milliseconds and a Z."""
    assert iso(0) == "1970-01-01T00:00:00.000Z"


def test_iso_keeps_milliseconds_exactly():
    """iso() renders the millisecond digits as given (no float rounding)."""
    assert iso(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert iso(1_700_000_000_999) == "2023-11-14T22:13:20.999Z"


# --- POST /enqueue ------------------------------------------------------------


def test_enqueue_single_object_gives_one_message_not_a_batch():
    """One object parses to a list of one Inbound and batch=False."""
    messages, batch = enqueue(b'{"queue":"q","payload":1}')
    assert batch is False
    assert len(messages) == 1
    (m,) = messages
    assert (m.queue, m.payload, m.timing, m.dedup_id) == ("q", b"1", NOW, None)
    assert uuid.UUID(m.id).version == 7


def test_enqueue_array_gives_messages_in_order_with_distinct_ids():
    """An array parses to one Inbound per item, in order, each with its own id, and batch=True."""
    body = json.dumps([{"queue": f"q{i}", "payload": i} for i in range(5)]).encode()
    messages, batch = enqueue(body)
    assert batch is True
    assert [m.queue for m in messages] == [f"q{i}" for i in range(5)]
    assert [m.payload for m in messages] == [str(i).encode() for i in range(5)]
    assert len({m.id for m in messages}) == 5


def test_enqueue_single_item_array_is_still_a_batch():
    """An array of one is answered as an array (batch=True)."""
    messages, batch = enqueue(b'[{"queue":"q","payload":1}]')
    assert (len(messages), batch) == (1, True)


def test_enqueue_empty_array_is_rejected():
    """An empty array is invalid input on the whole body."""
    assert invalid(enqueue, b"[]").field == ""


def test_enqueue_delay_sets_a_delay_in_ms():
    """delay 1.5 (seconds) is a delay of 1500 ms."""
    (m,), _ = enqueue(b'{"queue":"q","payload":1,"delay":1.5}')
    assert m.timing == Timing("delay", 1500)


@pytest.mark.parametrize("delay", [b"-1", b"-0.001"])
def test_enqueue_negative_delay_is_rejected(delay):
    """A negative delay is rejected, naming the field `delay`."""
    error = invalid(enqueue, b'{"queue":"q","payload":1,"delay":%s}' % delay)
    assert error.field == "delay"


def test_enqueue_run_at_iso_string_is_an_absolute_time():
    """run_at as an ISO-8601 string is the rule "at" that instant, in epoch ms."""
    (m,), _ = enqueue(b'{"queue":"q","payload":1,"run_at":"2026-11-22T10:00:00Z"}')
    assert m.timing == Timing("at", 1_795_341_600_000)


def test_enqueue_run_at_epoch_seconds_is_an_absolute_time():
    """run_at as a number is epoch seconds, kept as epoch ms."""
    (m,), _ = enqueue(b'{"queue":"q","payload":1,"run_at":1795312813}')
    assert m.timing == Timing("at", 1_795_312_813_000)


def test_enqueue_run_at_in_the_past_is_accepted():
    """A run_at already passed is accepted as given (the message then runs at once)."""
    (m,), _ = enqueue(b'{"queue":"q","payload":1,"run_at":"2026-11-01T00:00:00Z"}')
    assert m.timing == Timing("at", 1_793_491_200_000)


def test_enqueue_delay_and_run_at_together_are_rejected():
    """Giving both delay and run_at is rejected, naming the field `run_at`."""
    error = invalid(enqueue, b'{"queue":"q","payload":1,"delay":5,"run_at":1795312813}')
    assert error.field == "run_at"


def test_enqueue_delay_and_run_at_together_inside_an_array_name_the_item():
    """In an array, both delay and run_at on item 1 is reported as `[1].run_at`."""
    body = b'[{"queue":"q","payload":1},{"queue":"q","payload":1,"delay":5,"run_at":1795312813}]'
    assert invalid(enqueue, body).field == "[1].run_at"


def test_enqueue_unreadable_run_at_is_rejected():
    """A run_at string that is not ISO-8601 is rejected, naming the field `run_at`."""
    assert invalid(enqueue, b'{"queue":"q","payload":1,"run_at":"tomorrow"}').field == "run_at"


def test_enqueue_run_at_beyond_the_horizon_is_rejected():
    """A run_at further ahead than DRIP_MAX_HORIZON is rejected, naming the field `run_at`."""
    assert invalid(enqueue, b'{"queue":"q","payload":1,"run_at":"2027-06-01T00:00:00Z"}').field == "run_at"


def test_enqueue_run_at_in_milliseconds_gets_a_hint():
    """An epoch in ms sent as run_at seconds is rejected on `run_at` with a hint about milliseconds."""
    error = invalid(enqueue, b'{"queue":"q","payload":1,"run_at":1795312813366}')
    assert error.field == "run_at"
    assert "milliseconds" in error.message


def test_enqueue_horizon_comes_from_the_rules():
    """The horizon is the one in the Rules passed: 61 s is refused under a 60 s horizon."""
    with pytest.raises(InvalidInput) as caught:
        enqueue(b'{"queue":"q","payload":1,"delay":61}', Rules(max_horizon_s=60))
    assert caught.value.field == "delay"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"queue":"q","payload":1,"delay":5}', "delay"),
        (b'{"queue":"q","payload":1,"run_at":1795312813}', "run_at"),
        (b'{"queue":"q","payload":1,"run_at":"2026-11-22T10:00:00Z"}', "run_at"),
        (b'[{"queue":"q","payload":1},{"queue":"q","payload":1,"delay":5}]', "[1].delay"),
        (b'[{"queue":"q","payload":1},{"queue":"q","payload":1,"run_at":1795312813}]', "[1].run_at"),
    ],
)
def test_enqueue_timing_field_names_the_field_that_set_the_timing(body, field):
    """timing_field is the request field that set the timing (`delay`, `run_at`, `[i].delay`)."""
    messages, _ = enqueue(body)
    assert messages[-1].timing_field == field


def test_enqueue_keeps_the_payload_bytes_exactly():
    """The payload is the exact bytes sent: no re-encoding, spacing and escapes kept."""
    (m,), _ = enqueue(b'{"queue":"q","payload":{"a":[1,2]}}')
    assert m.payload == b'{"a":[1,2]}'
    (m,), _ = enqueue(b'{"queue":"q", "payload": {"t": "h\\u00e9",  "n": 1.50} }')
    assert m.payload == b'{"t": "h\\u00e9",  "n": 1.50}'


def test_enqueue_queue_of_max_length_is_accepted():
    """A queue of exactly 200 characters is accepted."""
    queue = "q" * MAX_QUEUE_LENGTH
    (m,), _ = enqueue(json.dumps({"queue": queue, "payload": 1}).encode())
    assert m.queue == queue


def test_enqueue_queue_too_long_is_rejected():
    """A queue of 201 characters is rejected, naming the field `queue`."""
    error = invalid(enqueue, json.dumps({"queue": "q" * (MAX_QUEUE_LENGTH + 1), "payload": 1}).encode())
    assert error.field == "queue"
    assert "200" in error.message


@pytest.mark.parametrize("queue", ["a\nb", "a\x00b", "tab\there", "del\x7f"])
def test_enqueue_queue_with_control_characters_is_rejected(queue):
    """A queue containing a control character is rejected, naming the field `queue`."""
    error = invalid(enqueue, json.dumps({"queue": queue, "payload": 1}).encode())
    assert error.field == "queue"


def test_enqueue_empty_queue_is_rejected():
    """An empty queue name is rejected, naming the field `queue`."""
    assert invalid(enqueue, b'{"queue":"","payload":1}').field == "queue"


def test_enqueue_error_inside_an_array_names_the_item():
    """In an array, the field is prefixed by the item's index, e.g. `[1].queue`."""
    body = json.dumps([{"queue": "ok", "payload": 1}, {"queue": "bad\n", "payload": 1}]).encode()
    assert invalid(enqueue, body).field == "[1].queue"


def test_enqueue_missing_field_inside_an_array_names_the_item():
    """A missing field of item 1 is reported as `[1].queue`."""
    assert invalid(enqueue, b'[{"queue":"q","payload":1},{"payload":1}]').field == "[1].queue"


@pytest.mark.parametrize(("body", "field"), [(b'{"queue":"q"}', "payload"), (b'{"payload":1}', "queue")])
def test_enqueue_missing_field_is_named(body, field):
    """A missing required field is named."""
    assert invalid(enqueue, body).field == field


def test_enqueue_wrong_type_is_named():
    """A field of the wrong type is named (queue must be a string)."""
    assert invalid(enqueue, b'{"queue":5,"payload":1}').field == "queue"


def test_enqueue_empty_dedup_id_is_rejected():
    """An empty dedup_id is rejected, naming the field `dedup_id`."""
    assert invalid(enqueue, b'{"queue":"q","payload":1,"dedup_id":""}').field == "dedup_id"


def test_enqueue_dedup_id_is_kept():
    """A dedup_id is carried on the Inbound."""
    (m,), _ = enqueue(b'{"queue":"q","payload":1,"dedup_id":"order-7"}')
    assert m.dedup_id == "order-7"


@pytest.mark.parametrize("body", [b"{", b"not json", b""])
def test_enqueue_malformed_json_is_rejected(body):
    """A body that is not JSON is invalid input on the whole body."""
    error = invalid(enqueue, body)
    assert error.field == ""
    assert "not valid JSON" in error.message


# --- POST /webhook ---------------------------------------------------------------


def test_webhook_from_wins_over_conversation_id():
    """An entry is queued by `from` when both `from` and `conversation_id` are present."""
    (m,) = parse_webhook(b'{"messages":[{"from":"+15550001","conversation_id":"c1"}]}')
    assert m.queue == "+15550001"


def test_webhook_conversation_id_when_from_is_missing_or_empty():
    """Without a (non-empty) `from`, the entry is queued by `conversation_id`."""
    a, b = parse_webhook(b'{"messages":[{"conversation_id":"c1"},{"from":"","conversation_id":"c2"}]}')
    assert (a.queue, b.queue) == ("c1", "c2")


def test_webhook_numeric_from_is_accepted():
    """A numeric `from` becomes its decimal string."""
    (m,) = parse_webhook(b'{"messages":[{"from":15550001}]}')
    assert m.queue == "15550001"


def test_webhook_without_sender_goes_to_the_default_queue():
    """An entry naming neither `from` nor `conversation_id` goes to webhook:default."""
    (m,) = parse_webhook(b'{"messages":[{"text":"hi"}]}')
    assert m.queue == DEFAULT_WEBHOOK_QUEUE == "webhook:default"


def test_webhook_payload_wraps_entry_and_metadata():
    """Each payload is {"message": <entry>, "metadata": <metadata>}, entry bytes kept as sent."""
    body = b'{"messages":[{"from":"a", "text":"x"},{"from":"b"}],"metadata":{"batch":7}}'
    a, b = parse_webhook(body)
    assert a.payload == b'{"message":{"from":"a", "text":"x"},"metadata":{"batch":7}}'
    assert json.loads(b.payload) == {"message": {"from": "b"}, "metadata": {"batch": 7}}
    assert a.id != b.id
    assert a.timing == b.timing == NOW


def test_webhook_metadata_is_null_when_absent():
    """Without `metadata` the payload carries "metadata": null."""
    (m,) = parse_webhook(b'{"messages":[{"from":"a"}]}')
    assert json.loads(m.payload) == {"message": {"from": "a"}, "metadata": None}


def test_webhook_non_object_entry_names_its_index():
    """An entry that is not an object is rejected, naming it `messages[1]`."""
    assert invalid(parse_webhook, b'{"messages":[{"from":"a"},5]}').field == "messages[1]"


def test_webhook_mistyped_from_names_the_entry_field():
    """A `from` that is neither string nor number is rejected, naming `messages[0].from`."""
    assert invalid(parse_webhook, b'{"messages":[{"from":[1]}]}').field == "messages[0].from"


def test_webhook_without_messages_is_rejected():
    """A body without the `messages` array is rejected, naming `messages`."""
    assert invalid(parse_webhook, b'{"metadata":{}}').field == "messages"


def test_enqueue_delay_beyond_the_horizon_is_rejected():
    """A delay further ahead than DRIP_MAX_HORIZON is refused, naming the field (no year-33715 run_at)."""
    with pytest.raises(InvalidInput) as caught:
        enqueue(b'[{"queue":"q","payload":1},{"queue":"q","payload":1,"delay":1e12}]')
    assert caught.value.field == "[1].delay"


def test_webhook_overlong_sender_names_the_from_field():
    """A `from` longer than a queue key may be is reported at messages[i].from."""
    body = json.dumps({"messages": [{"from": "x" * 201}]}).encode()
    with pytest.raises(InvalidInput) as caught:
        parse_webhook(body)
    assert caught.value.field == "messages[0].from"


def test_webhook_sender_written_as_a_whole_float_is_the_integer():
    """`from: 5.0` queues in "5", as `from: 5` does."""
    assert [m.queue for m in parse_webhook(b'{"messages":[{"from":5.0},{"from":5}]}')] == ["5", "5"]


def test_enqueue_queue_with_a_trailing_newline_is_refused():
    """"q\\n" has a control character: refused, though Python's `$` would match before the newline."""
    assert invalid(enqueue, b'{"queue":"q\\n","payload":1}').field == "queue"
