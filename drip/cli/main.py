"""The `drip` command: one subcommand per process or task.

A DripError is printed as one line and exits 1; nothing prints a traceback
at a user for a mistake they can fix, nor when its output is cut short
(`drip status | head -1`).
"""

from __future__ import annotations

import argparse
import os
import sys

from drip import __version__
from drip.cli import config, db, dead, ghl, processes, queues
from drip.core import logs
from drip.core import settings as settings_module
from drip.core.errors import DripError
from drip.store.connection import REDIS_DOWN


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drip", description=__doc__.splitlines()[0],
                                     epilog="`drip COMMAND --help` says what a command does, with an example.")
    parser.add_argument("--version", action="version", version=f"drip {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (processes, db, dead, queues, config, ghl):
        group.add_parsers(sub)
    return parser


def warn_about_unknown_names() -> None:
    """A misspelt variable (DRIP_MAXATTEMPTS) would otherwise be ignored without a word."""
    for name, closest in settings_module.unknown_names():
        hint = f"; did you mean {closest}?" if closest else " (see drip config for the settings)"
        print(f"drip: warning: {name} is not a drip setting and is ignored{hint}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passes_on", False):  # only `drip psql` hands unknown arguments on
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    warn_about_unknown_names()
    # The events of an operator's action (who did what) go to stderr; stdout is the command's answer.
    # The process commands set up their own logs to stdout.
    logs.setup(process="cli", to_stderr=True)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return code
    except DripError as exc:
        print(f"drip: error: {exc}", file=sys.stderr)
        return 1
    except REDIS_DOWN as exc:
        stale = ("; it came from .drip/env: is the drip dev that wrote it still running? (remove the file if not)"
                 if "DRIP_REDIS_URL" in settings_module.local_values() else "")
        print(f"drip: error: cannot reach Redis (DRIP_REDIS_URL): {exc}{stale}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): what is still buffered has nowhere to go. Point stdout at
        # /dev/null so the interpreter's flush at exit does not raise again (Python's documented recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
