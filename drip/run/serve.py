"""`drip web`: the ASGI app (drip.intake.app) under uvicorn, in one process or in several sharing the port.

Several processes each bind their own socket with SO_REUSEPORT, so the kernel
spreads new connections across them evenly. (uvicorn's own --workers shares one
listening socket: whichever process wakes first accepts, and under a burst of
connections one process was seen taking nearly all of them, 98% CPU against 4%.)
The parent is drip.run.pool's: it replaces a process that dies and stops them all on
SIGTERM. Each process is `python -m drip.run.serve --host H --port P`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from drip.core import logs
from drip.core import settings as settings_module
from drip.core.errors import ConfigError
from drip.run import pool, procs


def run(settings: settings_module.Settings, host: str, port: int) -> int:
    """Serve on host:port with settings.web_processes processes until SIGTERM/SIGINT."""
    if settings.web_processes == 1:
        server = _server(settings, host, port)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    _shared_socket(host, port).close()  # a port held by another program: say so once, not per process
    logs.get("drip.serve").info("web_started", host=host, port=port, processes=settings.web_processes)
    return pool.supervise("web", procs.python_module("drip.run.serve", "--host", host, "--port", str(port)),
                          settings.web_processes, os.environ, settings.shutdown_grace_s + 5)


def _server(settings: settings_module.Settings, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(
        "drip.intake.app:create_app",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    ))


def _shared_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def main() -> None:
    """One of `drip web --processes N`'s processes."""
    parser = argparse.ArgumentParser(prog="python -m drip.run.serve")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = settings_module.load()
    logs.setup(settings.log_level, settings.log_format, process="web")
    sock = _shared_socket(args.host, args.port)
    sock.listen(2048)
    server = _server(settings, args.host, args.port)
    server.run(sockets=[sock])
    sys.exit(0 if server.started else STARTUP_FAILURE)


if __name__ == "__main__":
    main()
