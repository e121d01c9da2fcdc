"""`drip db upgrade` and `drip db prune`: the history database's migrations and retention."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from tqdm import tqdm

from drip.cli.common import add_command, load_settings
from drip.core.errors import ConfigError, DripError
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
    # tqdm's disable=None leaves the bar off when stderr is not a terminal (logs and pipes get none).
    with tqdm(total=count, desc="pruning", unit=" rows", file=sys.stderr, disable=None, leave=False) as bar:
        pruned = retention.prune(settings.database_url, older_than_s, progress=bar.update)
    print(f"pruned {pruned} finished rows older than {age} from {target}")
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
    prune = add_command(db_sub, "prune", "delete finished messages' history rows older than the retention",
                        "drip db prune --older-than 30d --dry-run",
                        "Rows of unfinished messages stay whatever their age. A progress bar on a terminal.")
    prune.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h (default DRIP_HISTORY_RETENTION)")
    prune.add_argument("--dry-run", action="store_true", help="only count the rows that would go")
    prune.set_defaults(func=cmd_db_prune)
    p = add_command(sub, "psql", "open psql on the history database (DRIP_DATABASE_URL, or drip dev's embedded one)",
                    'drip psql -c "SELECT * FROM sequential_queue ORDER BY run_at DESC LIMIT 10"',
                    "Arguments after psql go to psql as they are. Uses psql from PATH, else the one the embedded "
                    "extra ships.")
    p.set_defaults(func=cmd_psql, passes_on=True)
