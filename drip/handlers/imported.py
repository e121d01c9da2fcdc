"""A user's handler named `module:function` (DRIP_HANDLER, or a route's `handler`)."""

from __future__ import annotations

import importlib

from drip.core.errors import ConfigError
from drip.core.messages import Handler


def import_handler(spec: str) -> Handler:
    """Resolve `module:function` (e.g. `myapp.jobs:handle`)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"DRIP_HANDLER must look like module:function, got {spec!r}")
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:  # a relative name, or the module itself failing at import
        raise ConfigError(f"DRIP_HANDLER: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"DRIP_HANDLER: {module_name!r} has no {attr!r}") from None
    if not callable(target):
        raise ConfigError(f"DRIP_HANDLER: {spec!r} is not callable")
    return target
