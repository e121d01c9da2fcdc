"""`drip clock`: move the clock GoHighLevel's business hours are judged by (rehearsals)."""

from __future__ import annotations

import argparse
from datetime import datetime

from drip.cli.common import add_command, load_settings
from drip.core.errors import DripError
from drip.core.keys import Keys
from drip.core.messages import now_ms
from drip.ghl.state import GhlState
from drip.store.connection import redis_client


def cmd_clock(args: argparse.Namespace) -> int:
    settings = load_settings()
    state = GhlState(redis_client(settings.redis_url), Keys(settings.prefix))
    if args.reset:
        state.set_clock(0)
        print("the business-hours clock is the wall clock again")
        return 0
    try:
        at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
    except ValueError:
        raise DripError("--at must be an ISO-8601 time with its offset, e.g. 2026-11-27T19:59:50-06:00") from None
    if at.tzinfo is None:
        raise DripError("--at needs an offset or Z (the time is absolute), e.g. 2026-11-27T19:59:50-06:00")
    woken = state.set_clock(round(at.timestamp() * 1000) - now_ms())
    print(f"business hours are now judged as if it were {at.isoformat()} ({woken} waiting queues look again)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "clock", "move the clock business hours are judged by (rehearsals)",
                    "drip clock --at 2026-11-27T19:59:50-06:00",
                    "Only GoHighLevel's business hours see the moved clock; drip clock --reset ends the rehearsal.")
    clock = p.add_mutually_exclusive_group(required=True)
    clock.add_argument("--at", help="judge business hours as if it were this ISO-8601 time (with offset)")
    clock.add_argument("--reset", action="store_true", help="back to the wall clock")
    p.set_defaults(func=cmd_clock)
