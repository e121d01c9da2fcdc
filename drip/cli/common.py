"""What every subcommand needs: the settings (with the command line's overrides) and the store."""

from __future__ import annotations

from drip.core import settings as settings_module
from drip.core.settings import Settings
from drip.store.stores import Store


def load_settings(**overrides: object) -> Settings:
    """The settings, with the options the command line gave (None: not given) over DRIP_*."""
    return settings_module.load(**{k: v for k, v in overrides.items() if v is not None})


def store(settings: Settings) -> Store:
    return Store.from_settings(settings)
