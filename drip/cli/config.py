"""`drip config`: the settings in effect and where each came from, secrets masked."""

from __future__ import annotations

import argparse
import re

import msgspec

from drip.cli.common import add_command, load_settings
from drip.core import settings as settings_module
from drip.core.settings import Settings

_MASK = "****"


def shown(name: str, value: object) -> str:
    """A setting's value as `drip config` prints it: secrets (fields kept out of repr) and URL passwords masked."""
    if value is None:
        return "unset"
    if not Settings.model_fields[name].repr:
        return _MASK
    text = str(value)
    return re.sub(r"(://[^:/@]*:)[^@/]+@", rf"\1{_MASK}@", text) if name.endswith("_url") else text


def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = [(f"DRIP_{name.upper()}", shown(name, value), settings_module.origin(name))
            for name, value in settings.model_dump().items()]
    if args.json:
        print(msgspec.json.encode([{"variable": v, "value": s, "from": o} for v, s, o in rows]).decode())
        return 0
    width = max(len(v) for v, _, _ in rows)
    value_width = min(60, max(len(s) for _, s, _ in rows))
    print(f"{'VARIABLE':<{width}}  {'VALUE':<{value_width}}  FROM")
    for variable, value, source in rows:
        print(f"{variable:<{width}}  {value:<{value_width}}  {source}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "config", "show the settings in effect and where each came from", "drip config | grep URL",
                    "Every DRIP_* setting, secrets masked, and where its value came from: env (the environment), "
                    ".drip/env (written by drip dev) or default.")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_config)
