"""`drip db upgrade`: the history database's migrations."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from drip.cli.common import add_command, load_settings
from drip.core.errors import DripError
from drip.db.connect import describe
from drip.db.migrate import upgrade


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    applied = upgrade(settings.database_url)
    target = describe(settings.database_url)
    print(f"applied {', '.join(applied)} to {target}" if applied else f"{target} is up to date")
    return 0


def cmd_psql(args: argparse.Namespace) -> int:
    from drip.run import embedded

    settings = load_settings()
    executable = shutil.which("psql") or embedded.psql_executable()
    if executable is None:
        raise DripError(f"psql is not installed: install PostgreSQL's client, or run psql {settings.database_url}")
    sys.stdout.flush()
    os.execv(executable, [executable, settings.database_url, *args.rest])  # psql takes over the terminal


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "db", "database tasks", "drip db upgrade")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="TASK")
    add_command(db_sub, "upgrade", "create the database if needed and apply missing migrations", "drip db upgrade",
                "Safe to run twice, or from two processes at once.").set_defaults(func=cmd_db_upgrade)
    p = add_command(sub, "psql", "open psql on the history database (DRIP_DATABASE_URL, or drip dev's embedded one)",
                    'drip psql -c "SELECT * FROM sequential_queue ORDER BY run_at DESC LIMIT 10"',
                    "Arguments after psql go to psql as they are. Uses psql from PATH, else the one the embedded "
                "extra ships.")
    p.set_defaults(func=cmd_psql, passes_on=True)
