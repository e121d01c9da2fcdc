"""`drip db upgrade`: the history database's migrations."""

from __future__ import annotations

import argparse

from drip.cli.common import load_settings
from drip.db.connect import describe
from drip.db.migrate import upgrade


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    applied = upgrade(settings.database_url)
    target = describe(settings.database_url)
    print(f"applied {', '.join(applied)} to {target}" if applied else f"{target} is up to date")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="database tasks")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="TASK")
    db_sub.add_parser("upgrade", help="create the database if needed and apply missing migrations").set_defaults(
        func=cmd_db_upgrade
    )
