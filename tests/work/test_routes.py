"""Routes from DRIP_ROUTES: the first matching glob picks a queue's handler and failure options."""

from __future__ import annotations

import pytest

from drip.core import settings as config
from drip.core.errors import ConfigError
from drip.handlers.forward import Forward
from drip.handlers.logged import log_message
from drip.work.routes import Router
from tests import sample_handlers as test_handlers


def router(tmp_path, text: str, **settings) -> Router:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return Router.from_settings(config.load(routes=str(path), **settings))


def test_first_matching_route_wins_and_others_fall_back_to_settings(tmp_path):
    """A queue takes the first route whose glob matches; unmatched queues take the DRIP_* settings."""
    r = router(tmp_path, """
[[route]]
queue = "wa:*"
handler = "tests.sample_handlers:record"
max_attempts = 9
on_dead = "pause"

[[route]]
queue = "*"
forward_url = "http://127.0.0.1:9/hook"
""", max_attempts=4, backoff_base_ms=7)
    wa = r.route("wa:123:456")
    assert (wa.handler, wa.max_attempts, wa.on_dead, wa.backoff_base_ms) == (test_handlers.record, 9, "pause", 7)
    other = r.route("location:1:workflow:2")
    assert isinstance(other.handler, Forward) and other.max_attempts == 4 and other.on_dead == "continue"


def test_without_routes_every_queue_takes_the_settings():
    """No DRIP_ROUTES: one default route from DRIP_HANDLER / DRIP_FORWARD_URL / DRIP_MAX_ATTEMPTS."""
    route = Router.from_settings(config.load(max_attempts=3)).route("anything")
    assert route.handler is log_message and route.max_attempts == 3


@pytest.mark.parametrize(("text", "message"), [
    ('[[route]]\nqueue = "a"\ncolour = "red"\n', "unknown option"),
    ('[[route]]\nhandler = "tests.sample_handlers:record"\n', "`queue`"),
    ('[[route]]\nqueue = "a"\non_dead = "explode"\n', "on_dead"),
    ('[[route]]\nqueue = "a"\nmax_attempts = 0\n', "max_attempts"),
    ('[[route]]\nqueue = "a"\nhandler = "no.such:thing"\n', "DRIP_HANDLER"),
    ("[[route]\n", "not valid TOML"),
])
def test_bad_routes_file_is_a_config_error_naming_the_problem(tmp_path, text, message):
    """A routes file drip cannot use stops it with a ConfigError saying what is wrong."""
    with pytest.raises(ConfigError, match=message):
        router(tmp_path, text)


def test_missing_routes_file_is_a_config_error(tmp_path):
    """DRIP_ROUTES pointing nowhere is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read"):
        Router.from_settings(config.load(routes=str(tmp_path / "nope.toml")))


def test_time_limits_and_rate_limits_come_from_the_route_or_the_settings(tmp_path):
    """timeout_s, rate_limit and rate_key are read per route; without them DRIP_HANDLER_TIMEOUT_S applies."""
    from drip.store.budgets import Budget

    r = router(tmp_path, """
[[route]]
queue = "wa:*"
timeout_s = 2
rate_limit = "80/s"
rate_key = 2
""", handler_timeout_s=40)
    wa, other = r.route("wa:123:456"), r.route("x")
    assert (wa.timeout_s, wa.rate, wa.rate_key) == (2.0, Budget(80, 1000), 2)
    assert wa.budget_name("wa:123:456") == "route:wa:*:123" != wa.budget_name("wa:124:456")
    assert (other.timeout_s, other.rate) == (40.0, None)


@pytest.mark.parametrize(("options", "message"), [
    ('timeout_s = 0', "timeout_s"),
    ('rate_limit = "fast"', "rate_limit"),
    ('rate_limit = "10/s"\nrate_key = 0', "rate_key"),
    ('rate_key = 2', "rate_key"),
])
def test_bad_time_or_rate_options_name_the_option(tmp_path, options, message):
    """A route option drip cannot use stops the worker with a ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        router(tmp_path, f'[[route]]\nqueue = "q*"\n{options}\n')
