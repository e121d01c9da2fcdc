"""What configuration says of GoHighLevel locations: release actions, tokens, timezones and
business hours (DRIP_GHL_*, DRIP_BUSINESS_HOURS, DRIP_HOLIDAYS), read and checked once, when
a worker starts, so a mistake is said once and names its variable."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drip.core.errors import ConfigError
from drip.core.settings import Settings
from drip.ghl import hours


@dataclass(frozen=True)
class Action:
    kind: str  # field | tag | workflow | webhook
    target: str
    value: str = ""


def parse_action(text: str) -> Action:
    """`field:timerdone=YES`, `tag:released`, `workflow:<id>`, `webhook:<url>` → Action (ValueError if not)."""
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    if kind == "field" and "=" in rest and rest.split("=", 1)[0].strip():
        key, value = rest.split("=", 1)
        return Action("field", key.strip(), value)
    if kind in ("tag", "workflow", "webhook") and rest.strip():
        return Action(kind, rest.strip())
    raise ValueError(f"cannot read release action {text!r}: use field:<key>=<value>, tag:<name>, "
                     "workflow:<id> or webhook:<url>")


def _json_map(value: str | None, name: str) -> dict:
    """A JSON object given inline or as the path of a file holding it."""
    if not value:
        return {}
    text = value
    if not value.lstrip().startswith(("{", "[")):
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {value}: {exc.strerror}") from None
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: not a JSON object: {exc}") from None
    if not isinstance(found, dict):
        raise ConfigError(f"{name}: must be a JSON object keyed by location id")
    return found


@dataclass(frozen=True)
class Location:
    """What configuration says of a location (DRIP_GHL_LOCATIONS), with the defaults applied."""

    hours: hours.Hours | None
    zone: ZoneInfo | None
    release_action: Action | None


@dataclass(frozen=True)
class Locations:
    """Every location's configuration, and the defaults for the ones configuration does not name."""

    default_action: Action
    default_hours: hours.Hours | None
    tokens: dict[str, str]
    locations: dict[str, Location]

    @classmethod
    def from_settings(cls, settings: Settings, release_action: str | None = None) -> Locations:
        """`release_action`: a route's, over DRIP_GHL_RELEASE_ACTION."""
        holidays = tuple((settings.holidays or "").split(","))
        try:
            default_action = parse_action(release_action or settings.ghl_release_action)
            default_hours = hours.parse(settings.business_hours, holidays) if settings.business_hours else None
        except ValueError as exc:
            raise ConfigError(f"GoHighLevel settings: {exc}") from None
        tokens = {str(k): str(v) for k, v in _json_map(settings.ghl_tokens, "DRIP_GHL_TOKENS").items()}
        locations = {str(k): _location(str(k), v, holidays, default_hours)
                     for k, v in _json_map(settings.ghl_locations, "DRIP_GHL_LOCATIONS").items()}
        return cls(default_action, default_hours, tokens, locations)


def _location(location: str, entry: object, holidays: tuple[str, ...], default_hours: hours.Hours | None) -> Location:
    where = f"DRIP_GHL_LOCATIONS[{location}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object with timezone, business_hours, holidays, release_action")
    try:
        zone = ZoneInfo(entry["timezone"]) if entry.get("timezone") else None
        spec = entry.get("business_hours")
        found = hours.parse(spec, tuple(entry.get("holidays", ())) + holidays) if spec else default_hours
        action = parse_action(entry["release_action"]) if entry.get("release_action") else None
    except (ValueError, ZoneInfoNotFoundError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Location(found, zone, action)
