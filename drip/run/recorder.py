"""The recorder's process (`python -m drip.run.recorder`), started and restarted by each
`drip supervisor`; the one holding the recorder's leadership writes history (drip.work.recorder)."""

from __future__ import annotations

import threading

from drip.core import logs
from drip.core import settings as settings_module
from drip.run.signals import stop_on_signals
from drip.store.stores import Store
from drip.work.recorder import Recorder


def main() -> None:
    settings = settings_module.load()
    logs.setup(settings.log_level, settings.log_format, process="recorder")
    stop = threading.Event()
    stop_on_signals(stop)
    Recorder(Store.from_settings(settings), settings.database_url, ttl_ms=settings.lease_ttl_ms,
             payloads=settings.history_payloads, retention_s=settings.history_retention_s).run(stop)


if __name__ == "__main__":
    main()
