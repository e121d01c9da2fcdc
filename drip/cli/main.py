"""The `drip` command: one subcommand per process or task.

A DripError is printed as one line and exits 1; nothing prints a traceback
at a user for a mistake they can fix.
"""

from __future__ import annotations

import argparse
import sys

from drip import __version__
from drip.cli import db, dead, ghl, processes, queues
from drip.core import logs
from drip.core.errors import DripError
from drip.store.connection import REDIS_DOWN


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drip", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"drip {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (processes, db, dead, queues, ghl):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The events of an operator's action (who did what) go to stderr; stdout is the command's answer.
    # The process commands set up their own logs to stdout.
    logs.setup(process="cli", to_stderr=True)
    try:
        return args.func(args)
    except DripError as exc:
        print(f"drip: error: {exc}", file=sys.stderr)
        return 1
    except REDIS_DOWN as exc:
        print(f"drip: error: cannot reach Redis (DRIP_REDIS_URL): {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
