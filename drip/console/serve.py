"""`drip console`: the console's app under uvicorn, one process on DRIP_CONSOLE_HOST:DRIP_CONSOLE_PORT."""

from __future__ import annotations

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from drip.console.app import create_app
from drip.core import logs
from drip.core.settings import Settings


def run(settings: Settings, host: str | None = None, port: int | None = None, *, dev: bool = False) -> int:
    host, port = host or settings.console_host, port or settings.console_port
    settings = settings.model_copy(update={"console_host": host, "console_port": port})
    app = create_app(settings, dev=dev)  # a console without tokens off loopback stops here, said once
    logs.get("drip.console").info("console_starting", url=f"http://{host}:{port}", open=app.state.console.gate.open)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                           timeout_graceful_shutdown=5))
    server.run()
    return 0 if server.started else STARTUP_FAILURE
