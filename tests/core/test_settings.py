"""Settings from DRIP_* variables: safe local defaults, typed values, and errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from drip.core import settings as config
from drip.core.errors import ConfigError
from tests.helpers import ROOT


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Each test starts from an environment without any DRIP_* variable."""
    for name in list(os.environ):
        if name.upper().startswith("DRIP_"):
            monkeypatch.delenv(name)


def test_defaults_point_at_local_servers():
    """With nothing set, drip uses the local Redis and PostgreSQL and the prefix `drip`."""
    settings = config.load()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == "postgresql://127.0.0.1:5432/drip"
    assert settings.prefix == "drip"
    assert settings.max_body == 1048576
    assert settings.handler is None
    assert settings.forward_url is None


def test_broker_falls_back_to_redis_url(monkeypatch):
    """Without DRIP_BROKER_URL the broker is the data Redis, wherever DRIP_REDIS_URL points."""
    assert config.load().broker == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("DRIP_REDIS_URL", "redis://10.0.0.5:6380/2")
    assert config.load().broker == "redis://10.0.0.5:6380/2"


def test_broker_url_overrides_redis_url(monkeypatch):
    """DRIP_BROKER_URL, when set, is the broker; the data Redis stays DRIP_REDIS_URL."""
    monkeypatch.setenv("DRIP_REDIS_URL", "redis://10.0.0.5:6380/2")
    monkeypatch.setenv("DRIP_BROKER_URL", "amqp://guest@127.0.0.1:5672/")
    settings = config.load()
    assert settings.broker == "amqp://guest@127.0.0.1:5672/"
    assert settings.redis_url == "redis://10.0.0.5:6380/2"


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("DRIP_REDIS_URL", "redis://10.0.0.5:6380/2", "redis_url", "redis://10.0.0.5:6380/2"),
        ("DRIP_DATABASE_URL", "postgresql://db:5433/x", "database_url", "postgresql://db:5433/x"),
        ("DRIP_PREFIX", "my-app.v2_x", "prefix", "my-app.v2_x"),
        ("DRIP_THREADS", "3", "threads", 3),
        ("DRIP_PROCESSES", "2", "processes", 2),
        ("DRIP_MAX_BODY", "4096", "max_body", 4096),
        ("DRIP_FORWARD_URL", "http://127.0.0.1:9/hook", "forward_url", "http://127.0.0.1:9/hook"),
        ("DRIP_FORWARD_TIMEOUT_S", "2.5", "forward_timeout_s", 2.5),
        ("DRIP_HANDLER", "tests.sample_handlers:record", "handler", "tests.sample_handlers:record"),
        ("DRIP_LEASE_TTL_MS", "3000", "lease_ttl_ms", 3000),
        ("DRIP_LOG_FORMAT", "json", "log_format", "json"),
        ("DRIP_HISTORY_RETENTION", "12h", "history_retention_s", 12 * 3600),
        ("DRIP_HISTORY_RETENTION", "0", "history_retention_s", 0),
        ("DRIP_HISTORY_PAYLOADS", "none", "history_payloads", "none"),
    ],
)
def test_values_come_from_drip_variables(monkeypatch, variable, value, attribute, expected):
    """Each setting `x` is read from DRIP_X and converted to its type."""
    monkeypatch.setenv(variable, value)
    assert getattr(config.load(), attribute) == expected


@pytest.mark.parametrize(
    ("variable", "attribute", "default"),
    [
        ("DRIP_PREFIX", "prefix", "drip"),
        ("DRIP_THREADS", "threads", 8),
        ("DRIP_REDIS_URL", "redis_url", config.DEFAULT_REDIS_URL),
    ],
)
def test_empty_variable_keeps_the_default(monkeypatch, variable, attribute, default):
    """A variable set to the empty string is ignored: the default stays."""
    monkeypatch.setenv(variable, "")
    assert getattr(config.load(), attribute) == default


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DRIP_PREFIX", "a b"),
        ("DRIP_PREFIX", "x{y}"),
        ("DRIP_PREFIX", "p" * 65),
        ("DRIP_THREADS", "0"),
        ("DRIP_MAX_BODY", "abc"),
        ("DRIP_FORWARD_TIMEOUT_S", "0"),
        ("DRIP_LOG_LEVEL", "loud"),
        ("DRIP_LOG_FORMAT", "xml"),
        ("DRIP_DEFAULT_TIMEFRAME", "soon"),
        ("DRIP_DEFAULT_TIMEFRAME", "5 to"),
        ("DRIP_SCHEDULER_INTERVAL_MS", "0"),
        ("DRIP_MAX_HORIZON", "0"),
        ("DRIP_HISTORY_RETENTION", "30 days"),
        ("DRIP_HISTORY_PAYLOADS", "some"),
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(monkeypatch, variable, value):
    """A malformed DRIP_* value raises ConfigError whose message names that variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        config.load()
    assert f"{variable}:" in str(caught.value)


def test_every_invalid_variable_is_named_at_once(monkeypatch):
    """Several bad values are reported together, so one run shows everything to fix."""
    monkeypatch.setenv("DRIP_PREFIX", "a b")
    monkeypatch.setenv("DRIP_THREADS", "0")
    with pytest.raises(ConfigError) as caught:
        config.load()
    assert "DRIP_PREFIX:" in str(caught.value)
    assert "DRIP_THREADS:" in str(caught.value)


@pytest.mark.parametrize("value", ["WARNING", "Warning", "warning"])
def test_log_level_is_case_insensitive(monkeypatch, value):
    """DRIP_LOG_LEVEL accepts any case and is kept lowercase."""
    monkeypatch.setenv("DRIP_LOG_LEVEL", value)
    assert config.load().log_level == "warning"


def test_keyword_overrides_win_over_the_environment(monkeypatch):
    """load(x=...) (the CLI's --threads, a test's own values) beats DRIP_X."""
    monkeypatch.setenv("DRIP_THREADS", "3")
    assert config.load(threads=5).threads == 5


def test_settings_are_frozen():
    """A Settings object cannot be changed after loading (processes share it safely)."""
    settings = config.load()
    with pytest.raises(ValueError):
        settings.prefix = "other"


def test_cli_prints_a_config_error_as_one_line_and_exits_1():
    """`drip status` with a bad DRIP_PREFIX prints one `drip: error:` line naming it, exit 1, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRIP_")}
    env["DRIP_PREFIX"] = "a b"
    result = subprocess.run(
        [sys.executable, "-m", "drip", "status"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("drip: error:")
    assert "DRIP_PREFIX" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_unknown_drip_names_come_with_the_closest_setting(monkeypatch):
    """A misspelt DRIP_* name is reported with the nearest setting; the tests' and supervisord's names are not."""
    monkeypatch.setenv("DRIP_MAXATTEMPTS", "3")
    monkeypatch.setenv("DRIP_LOGLEVEL", "debug")
    monkeypatch.setenv("DRIP_ZZZ", "1")
    monkeypatch.setenv("DRIP_TEST_REDIS_URL", "redis://x")
    monkeypatch.setenv("DRIP_BIN", "/usr/local/bin/drip")
    assert config.unknown_names() == [("DRIP_LOGLEVEL", "DRIP_LOG_LEVEL"), ("DRIP_MAXATTEMPTS", "DRIP_MAX_ATTEMPTS"),
                                      ("DRIP_ZZZ", None)]


@pytest.mark.parametrize("url", ["postgresql://u@h:5432/d", "postgres://h/d", "dbname=d host=127.0.0.1 port=5432"])
def test_database_urls_and_libpq_strings_are_accepted(monkeypatch, url):
    """DRIP_DATABASE_URL takes a postgresql:// URL or libpq's key=value form."""
    monkeypatch.setenv("DRIP_DATABASE_URL", url)
    assert config.load().database_url == url


def test_drip_env_fills_in_what_the_environment_lacks(monkeypatch, tmp_path):
    """./.drip/env supplies DRIP_REDIS_URL when the environment has none; the environment wins otherwise."""
    monkeypatch.chdir(tmp_path)
    config.write_local_env({"DRIP_REDIS_URL": "redis://127.0.0.1:6390/0"}, "test")
    assert config.load().redis_url == "redis://127.0.0.1:6390/0"
    assert config.origin("redis_url") == ".drip/env" and config.origin("threads") == "default"
    assert config.load(local=False).redis_url == config.DEFAULT_REDIS_URL
    monkeypatch.setenv("DRIP_REDIS_URL", "redis://127.0.0.1:6391/0")
    assert config.load().redis_url == "redis://127.0.0.1:6391/0" and config.origin("redis_url") == "env"
    config.remove_local_env()
    assert not (tmp_path / ".drip" / "env").exists()
