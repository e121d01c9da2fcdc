"""Every DRIP_* setting, typed, with safe local defaults.

This is the only module that reads the environment; everything else receives a
`Settings` object, so a test or a child process can run with its own values.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from drip.core.errors import ConfigError
from drip.core.timing import parse_rate, parse_timeframe

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/drip"


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

    # The operator's console (drip console): its own port; tokens "<token>:operator,<token>:viewer".
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8001, ge=1, le=65535)
    console_tokens: str | None = Field(default=None, repr=False)
    # How often each process adds its counters (drip_* metrics) to Redis.
    metrics_flush_ms: int = Field(default=1000, ge=10)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

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

    @field_validator("log_level", "log_format", mode="before")
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


def load(**overrides: object) -> Settings:
    """Read the settings from the environment; a bad value raises ConfigError naming it."""
    try:
        return Settings(**overrides)
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
