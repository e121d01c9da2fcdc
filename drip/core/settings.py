"""Every DRIP_* setting, typed, with safe local defaults.

This is the only module that reads the environment (and ./.drip/env, where
`drip dev` leaves its embedded servers' URLs for the commands run beside it);
everything else receives a `Settings` object, so a test or a child process can
run with its own values.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from drip.core.errors import ConfigError
from drip.core.timing import parse_duration, parse_rate, parse_timeframe

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/drip"

#: Where `drip dev` writes the addresses of its embedded servers, in the folder it runs in; every
#: `drip` command started in that folder reads it for the DRIP_* variables the environment lacks.
LOCAL_ENV = Path(".drip") / "env"

#: DRIP_* names that are not settings but are read elsewhere: supervisord.conf's executable, the
#: test suite's servers and reports. Every other unknown DRIP_* name is likely a misspelling.
NOT_SETTINGS = ("DRIP_BIN", "DRIP_TEST_", "DRIP_CHAOS_REPORT")

_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_DATABASE_SCHEMES = ("postgresql", "postgres")


class Settings(BaseSettings):
    """drip's configuration; field `x` is read from `DRIP_X`."""

    model_config = SettingsConfigDict(env_prefix="DRIP_", env_ignore_empty=True, frozen=True)

    redis_url: str = DEFAULT_REDIS_URL
    # Durability across a failover: writes wait for this many replicas (WAIT) before they count.
    redis_min_replicas: int = Field(default=0, ge=0)
    redis_replica_timeout_ms: int = Field(default=1000, ge=1)
    broker_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    prefix: str = "drip"
    # Where `drip web` and `drip dev` listen unless --host / --port say otherwise.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    threads: int = Field(default=8, ge=1)
    web_processes: int = Field(default=1, ge=1)

    handler: str | None = None
    routes: str | None = None
    forward_url: str | None = None
    forward_timeout_s: float = Field(default=10.0, gt=0)

    max_body: int = Field(default=1024 * 1024, ge=1)
    max_batch: int = Field(default=1000, ge=1)
    rate_limit: str | None = None

    # Authentication of the intake endpoints (secrets stay out of repr and logs).
    require_auth: bool = False
    api_tokens: str | None = Field(default=None, repr=False)
    signing_secret: str | None = Field(default=None, repr=False)
    token_header: str = "X-Drip-Token"
    whatsapp_verify_token: str | None = Field(default=None, repr=False)
    whatsapp_app_secret: str | None = Field(default=None, repr=False)
    max_horizon: int = Field(default=30 * 86400, ge=1)
    default_timeframe: str | None = None
    scheduler_interval_ms: int = Field(default=100, ge=1)
    dedup_ttl_s: int = Field(default=86400, ge=1)

    lease_ttl_ms: int = Field(default=10_000, ge=100)
    drain_budget: int = Field(default=100, ge=1)
    drain_budget_ms: int = Field(default=5_000, ge=1)
    drain_batch: int = Field(default=16, ge=1, le=1000)
    max_attempts: int = Field(default=5, ge=1)
    dedup_fields: str | None = None
    backoff_base_ms: int = Field(default=500, ge=0)
    backoff_max_ms: int = Field(default=60_000, ge=0)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    handler_timeout_s: float = Field(default=300.0, gt=0)

    # GoHighLevel releases (DRIP_HANDLER=ghl, or handler = "ghl" in a route).
    ghl_api_base: str = "https://services.leadconnectorhq.com"
    ghl_release_action: str = "field:timerdone=YES"
    ghl_tokens: str | None = Field(default=None, repr=False)
    ghl_payload_tokens: bool = False
    ghl_locations: str | None = None
    business_hours: str | None = None
    holidays: str | None = None

    # History in PostgreSQL: how long finished messages' rows stay (0 keeps them all), and how much
    # of each payload a row keeps (a payload is often most of a row).
    history_retention: str = "30d"
    history_payloads: Literal["full", "redacted", "none"] = "redacted"
    # The operator's console (drip console): its own port; tokens "<token>:operator,<token>:viewer".
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8001, ge=1, le=65535)
    console_tokens: str | None = Field(default=None, repr=False)
    # How often each process adds its counters (drip_* metrics) to Redis.
    metrics_flush_ms: int = Field(default=1000, ge=10)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _redis_url_is_a_url(cls, value: str | None, info) -> str | None:
        # redis-py would raise a bare ValueError (a traceback) on first use; say what is expected instead.
        if value is None:
            return value
        scheme = value.partition("://")[0] if "://" in value else ""
        allowed = _REDIS_SCHEMES + (("amqp", "amqps") if info.field_name == "broker_url" else ())
        if scheme not in allowed or not (urlsplit(value).netloc or scheme == "unix"):
            raise ValueError(f"{value!r} is not a Redis URL: expected redis://host:port/db (or rediss://, unix://"
                             f", redis+cluster://host:port,host:port{', amqp://' if 'amqp' in allowed else ''})")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: str) -> str:
        # A URL, or libpq's `key=value ...` form (which the tests' cloned databases use).
        is_conninfo = "://" not in value and re.match(r"\s*\w+\s*=", value)
        if not is_conninfo and value.partition("://")[0] not in _DATABASE_SCHEMES:
            raise ValueError(f"{value!r} is not a PostgreSQL URL: expected postgresql://user@host:port/database")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_is_plain(cls, value: str) -> str:
        # Braces would start a hash tag of their own and break the shard layout;
        # the prefix also names dramatiq's queue, which allows only these characters.
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError("must be 1 to 64 letters, digits, '_', '.' or '-'")
        return value

    @field_validator("default_timeframe")
    @classmethod
    def _timeframe_is_readable(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timeframe(value)  # its ValueError names the problem
        return value

    @field_validator("history_retention")
    @classmethod
    def _retention_is_readable(cls, value: str) -> str:
        parse_duration(value)  # its ValueError names the problem
        return value

    @property
    def history_retention_s(self) -> int:
        """DRIP_HISTORY_RETENTION in seconds; 0 keeps every row."""
        return parse_duration(self.history_retention)

    @field_validator("rate_limit")
    @classmethod
    def _rate_is_readable(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)  # its ValueError names the problem
        return value

    @model_validator(mode="after")
    def _auth_is_configured_when_required(self) -> Settings:
        if self.require_auth and not (self.api_tokens or self.signing_secret):
            raise ValueError("DRIP_REQUIRE_AUTH is on: set DRIP_API_TOKENS or DRIP_SIGNING_SECRET")
        return self

    @property
    def tokens(self) -> tuple[str, ...]:
        """DRIP_API_TOKENS as a tuple (comma-separated in the environment)."""
        return tuple(t.strip() for t in (self.api_tokens or "").split(",") if t.strip())

    @property
    def console_roles(self) -> dict[str, str]:
        """DRIP_CONSOLE_TOKENS as token → role ("operator" or "viewer")."""
        roles = {}
        for item in (self.console_tokens or "").split(","):
            if item.strip():
                token, _, role = item.strip().rpartition(":")
                roles[token] = role
        return roles

    @field_validator("console_tokens")
    @classmethod
    def _console_tokens_are_readable(cls, value: str | None) -> str | None:
        for item in (value or "").split(","):
            token, _, role = item.strip().rpartition(":")
            if item.strip() and (not token or role not in ("operator", "viewer")):
                raise ValueError("each entry is <token>:operator or <token>:viewer, comma-separated")
        return value

    @field_validator("log_level", "log_format", "history_payloads", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def broker(self) -> str:
        """dramatiq's broker URL: DRIP_BROKER_URL, else the data Redis (which a cluster cannot be:
        dramatiq's Redis broker runs scripts across slots)."""
        if self.broker_url:
            return self.broker_url
        if self.redis_url.split("://", 1)[0].endswith("+cluster"):
            raise ConfigError("DRIP_REDIS_URL names a Redis Cluster, on which dramatiq's broker cannot run: set "
                              "DRIP_BROKER_URL to amqp://... (RabbitMQ) or redis://... (a standalone Redis)")
        return self.redis_url


def load(*, local: bool = True, **overrides: object) -> Settings:
    """Read the settings from the environment (and, with `local`, from ./.drip/env for what the environment
    lacks); `overrides` win over both. A bad value raises ConfigError naming it."""
    from_file = {name.removeprefix("DRIP_").lower(): value for name, value in local_values().items()} if local else {}
    try:
        return Settings(**{**from_file, **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            (f"DRIP_{'_'.join(str(p) for p in err['loc']).upper()}: " if err["loc"] else "")
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def as_environment(settings: Settings) -> dict[str, str]:
    """The environment a child process needs to load the same settings (the parent's env plus every DRIP_*)."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"DRIP_{name.upper()}"] = str(value)
    return env


def explicitly_set(name: str) -> bool:
    """Whether the user set DRIP_<NAME> (drip dev starts embedded servers only for unset URLs)."""
    return bool(os.environ.get(f"DRIP_{name.upper()}"))


def _file_values() -> dict[str, str]:
    """The settings ./.drip/env names (NAME=value lines; `#` starts a comment)."""
    try:
        text = LOCAL_ENV.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#") and name.removeprefix("DRIP_").lower() in Settings.model_fields:
            values[name.strip()] = value.strip()
    return values


def local_values() -> dict[str, str]:
    """The DRIP_* values ./.drip/env gives that the environment does not set (those are the ones in effect)."""
    return {name: value for name, value in _file_values().items() if not os.environ.get(name)}


def origin(name: str) -> str:
    """Where setting `name`'s value comes from: `env`, `.drip/env` or `default`."""
    variable = f"DRIP_{name.upper()}"
    if os.environ.get(variable):
        return "env"
    return str(LOCAL_ENV) if variable in local_values() else "default"


def unknown_names() -> list[tuple[str, str | None]]:
    """DRIP_* variables in the environment that are not settings, each with the closest setting's name."""
    known = [f"DRIP_{name.upper()}" for name in Settings.model_fields]
    return [(name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None))
            for name in sorted(os.environ)
            if name.startswith("DRIP_") and name not in known and not name.startswith(NOT_SETTINGS)]


def write_local_env(values: dict[str, str], note: str) -> Path:
    """Write ./.drip/env (drip dev: where its embedded servers are), with `note` as its first line."""
    LOCAL_ENV.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_ENV.write_text(f"# {note}\n" + "".join(f"{name}={value}\n" for name, value in values.items()))
    return LOCAL_ENV


def remove_local_env() -> None:
    """Remove ./.drip/env (drip dev, when it stops: its servers stop with it)."""
    LOCAL_ENV.unlink(missing_ok=True)
