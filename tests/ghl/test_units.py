"""The ghl handler's parts on their own: release actions, configuration maps, the location budget in Redis."""

from __future__ import annotations

import pytest

from drip.core import settings as config
from drip.core.errors import ConfigError
from drip.ghl.locations import Action, parse_action
from drip.ghl.release import GhlRelease
from drip.ghl.state import GhlState


@pytest.mark.parametrize(("text", "action"), [
    ("field:timerdone=YES", Action("field", "timerdone", "YES")),
    ("field:contact.stage = done", Action("field", "contact.stage", " done")),
    ("tag:released", Action("tag", "released")),
    ("workflow:wf-9", Action("workflow", "wf-9")),
    ("webhook:https://example.com/x", Action("webhook", "https://example.com/x")),
])
def test_release_actions_are_read(text, action):
    """Each documented release action form is read into its kind and target."""
    assert parse_action(text) == action


@pytest.mark.parametrize("text", ["", "field:", "field:=YES", "tag:", "email:x", "timerdone=YES"])
def test_unreadable_release_actions_are_refused(text):
    with pytest.raises(ValueError, match="release action"):
        parse_action(text)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("ghl_tokens", "{not json", "DRIP_GHL_TOKENS"),
    ("ghl_tokens", "[1, 2]", "JSON object"),
    ("ghl_tokens", "/no/such/file.json", "cannot read"),
    ("ghl_locations", '{"L1": {"timezone": "Mars/Olympus"}}', "DRIP_GHL_LOCATIONS"),
    ("ghl_locations", '{"L1": {"business_hours": "whenever"}}', "DRIP_GHL_LOCATIONS"),
    ("ghl_locations", '{"L1": "09-18"}', "DRIP_GHL_LOCATIONS"),
    ("ghl_release_action", "email:someone", "release action"),
])
def test_bad_ghl_configuration_is_a_config_error(settings, name, value, message):
    """Tokens, locations and actions drip cannot use stop it with a ConfigError naming the setting."""
    with pytest.raises(ConfigError, match=message):
        GhlRelease(settings.model_copy(update={name: value}))


def test_tokens_may_come_from_a_file(settings, tmp_path):
    """DRIP_GHL_TOKENS may name a file holding the JSON map."""
    path = tmp_path / "tokens.json"
    path.write_text('{"L1": "t1"}')
    assert GhlRelease(settings.model_copy(update={"ghl_tokens": str(path)})).config.tokens == {"L1": "t1"}


def test_location_budget_allows_100_in_any_window_then_says_how_long_to_wait(store):
    """The sliding log lets 100 requests through, then answers the wait until the oldest leaves the window."""
    state = GhlState(store.client, store.keys)
    waits = [state.take("L1")[0] for _ in range(101)]
    assert waits[:100] == [0] * 100
    assert 9_000 < waits[100] <= 10_250
    assert state.take("L2")[0] == 0, "another location has its own budget"


def test_a_settled_request_counts_from_when_its_answer_came(store):
    """Settling moves a request's place in the log to now: the wait for a new one grows accordingly."""
    from tests.helpers import wait_for

    state = GhlState(store.client, store.keys)
    entries = [state.take("L1")[1] for _ in range(100)]
    asked = store.redis_now_ms()
    wait_for(lambda: store.redis_now_ms() >= asked + 200, 5, "the answers to take 200 ms")
    for entry in entries:
        state.settle("L1", entry)
    # Unsettled, the oldest request would leave the window within 10,250 - 200 ms; settled, it counts anew.
    assert state.take("L1")[0] > 10_250 - 200


def test_what_ghl_reports_tightens_the_budget_and_a_429_blocks_it(store):
    """X-RateLimit-Remaining counts requests drip did not make; a 429's Retry-After blocks the location."""
    state = GhlState(store.client, store.keys)
    state.observe("L1", remaining=2, blocked_ms=0)  # others used 98 of the 100
    first, second, third = (state.take("L1")[0] for _ in range(3))
    assert (first, second) == (0, 0) and third > 0
    state.observe("L3", remaining=None, blocked_ms=5_000)
    assert 4_000 < state.take("L3")[0] <= 5_000


def test_settings_without_ghl_handler_need_no_ghl_configuration():
    """The default route does not build the ghl handler (nor read its settings) unless asked to."""
    from drip.work.routes import Router

    assert Router.from_settings(config.load()).route("q").handler.__name__ == "log_message"
