"""What every subcommand needs: the settings (with the command line's overrides) and the store."""

from __future__ import annotations

import argparse
import sys
import textwrap

from drip.core import settings as settings_module
from drip.core.settings import Settings
from drip.store.stores import Store


def load_settings(*, local: bool = True, **overrides: object) -> Settings:
    """The settings, with the options the command line gave (None: not given) over DRIP_*. Values taken
    from ./.drip/env (`drip dev`'s embedded servers) are said on stderr, so nobody wonders which Redis this is."""
    settings = settings_module.load(local=local, **{k: v for k, v in overrides.items() if v is not None})
    from_file = settings_module.local_values() if local else {}
    if from_file:
        print(f"drip: using {', '.join(from_file)} from {settings_module.LOCAL_ENV} (drip dev's embedded servers;"
              " set the variables to override)", file=sys.stderr)
    return settings


def store(settings: Settings) -> Store:
    return Store.from_settings(settings)


def add_command(sub: argparse._SubParsersAction, name: str, what: str, example: str,
                details: str = "") -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does (`what`, then `details`), its arguments, and `example`."""
    # Raw, so the example keeps its own line; the description is wrapped here instead.
    description = textwrap.fill(f"{what[0].upper()}{what[1:]}. {details}".strip(), 80)
    return sub.add_parser(name, help=what, description=description, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
