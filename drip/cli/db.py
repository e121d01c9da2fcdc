"""`drip db upgrade` and `drip db prune`: the history database's migrations and retention."""

from __future__ import annotations

import argparse
import sys

from drip.cli.common import load_settings
from drip.core.errors import ConfigError
from drip.core.timing import parse_duration
from drip.db import retention
from drip.db.connect import describe
from drip.db.migrate import upgrade


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    applied = upgrade(settings.database_url)
    target = describe(settings.database_url)
    print(f"applied {', '.join(applied)} to {target}" if applied else f"{target} is up to date")
    return 0


def cmd_db_prune(args: argparse.Namespace) -> int:
    """Retention by hand: count the finished rows older than the age, then delete them in batches
    (a progress bar on a terminal), or with --dry-run only count them."""
    settings = load_settings()
    age = args.older_than or settings.history_retention
    try:
        older_than_s = parse_duration(age)
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from None
    target = describe(settings.database_url)
    if older_than_s == 0:
        print(f"retention {age} keeps every row: nothing to prune in {target}")
        return 0
    count = retention.count_prunable(settings.database_url, older_than_s)
    if args.dry_run or count == 0:
        print(f"{count} finished rows older than {age} in {target}" + (" would be pruned" if count else ""))
        return 0
    if sys.stdout.isatty():
        # Imported on a terminal only: rich costs ~100 ms to import.
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("pruning", total=count)
            pruned = retention.prune(settings.database_url, older_than_s, progress=lambda n: bar.advance(task, n))
    else:
        pruned = retention.prune(settings.database_url, older_than_s)
    print(f"pruned {pruned} finished rows older than {age} from {target}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="database tasks")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="TASK")
    db_sub.add_parser("upgrade", help="create the database if needed and apply missing migrations").set_defaults(
        func=cmd_db_upgrade
    )
    prune = db_sub.add_parser("prune", help="delete finished messages' rows older than the retention")
    prune.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h (default DRIP_HISTORY_RETENTION)")
    prune.add_argument("--dry-run", action="store_true", help="only count the rows that would go")
    prune.set_defaults(func=cmd_db_prune)
