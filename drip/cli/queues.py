"""`drip status`, `drip show`, `drip pause`, `drip resume`, `drip skip`, `drip cancel`: queues and messages
as an operator sees them (the actions are drip.operations's, shared with the console)."""

from __future__ import annotations

import argparse
import sys
import time

import msgspec

from drip.cli.common import add_command, load_settings, store
from drip.core.errors import DripError
from drip.core.messages import iso, now_ms
from drip.core.settings import Settings
from drip.db import queries
from drip.operations import messages, queues
from drip.store import status
from drip.store.stores import Store


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    s = store(settings)
    if args.watch is None:
        return _show_status(settings, s, args.json)
    # --watch: redraw until Ctrl-C; on a terminal the screen is cleared first, in a pipe the views follow each
    # other (with --json, one JSON document per line).
    clear = "\033[H\033[J" if sys.stdout.isatty() else ""
    try:
        while True:
            if not args.json:
                print(f"{clear}every {args.watch:g} s   {iso(now_ms())}")
            _show_status(settings, s, args.json)
            sys.stdout.flush()
            time.sleep(max(args.watch, 0.1))
    except KeyboardInterrupt:
        return 0


def _show_status(settings: Settings, s: Store, as_json: bool) -> int:
    overview = status.overview(s.client, s.keys)
    try:
        overview["lateness"] = queries.lateness(settings.database_url)
    except DripError:
        overview["lateness"] = None  # history unreachable: Redis's view stands alone
    if as_json:
        print(msgspec.json.encode(overview).decode())
        return 0
    print(
        f"leader: {overview['leader'] or 'none'}   workers: {len(overview['workers'])}   "
        f"slots: {overview['slots']}   leases: {overview['leases']}   "
        f"history backlog: {overview['history_backlog']}   dead letters: {overview['dead_letters']}"
    )
    if overview["lateness"]:
        title = "RELEASED BY WORKFLOW, LAST HOUR"
        width = max(len(title), *(len(r["queue"]) for r in overview["lateness"]))
        print(f"{title:<{width}}  {'RELEASES':>8}  {'AVG LATE':>9}  {'WORST LATE':>10}  EARLY")
        for r in overview["lateness"]:
            print(f"{r['queue']:<{width}}  {r['released']:>8}  {r['avg_late_ms']:>7}ms  {r['worst_late_ms']:>8}ms"
                  f"  {r['early']}")
        print()
    rows = overview["queues"]
    if not rows:
        print("no queue has messages")
        return 0
    width = max(len("QUEUE"), *(len(r["queue"]) for r in rows))
    holders = {r["queue"]: _holder(r) for r in rows}
    hw = max(len("LEASE HOLDER"), *(len(h) for h in holders.values()))
    print(f"{'QUEUE':<{width}}  {'READY':>7}  {'IN-FLIGHT':>9}  {'SCHEDULED':>9}  {'NEXT RUN_AT':<24}  "
          f"{'LEASE HOLDER':<{hw}}  WAITS FOR")
    for r in rows:
        next_run = iso(r["next_run_at_ms"]) if r["next_run_at_ms"] is not None else "-"
        waits = f"{r['waits_for']} (for {-r['waiting_since_ms'] / 1000:.1f} s)" if r["waits_for"] else "-"
        print(f"{r['queue']:<{width}}  {r['ready']:>7}  {r['in_flight']:>9}  {r['scheduled']:>9}  {next_run:<24}  "
              f"{holders[r['queue']]:<{hw}}  {waits}")
    return 0


def _holder(row: dict) -> str:
    holder = row["lease_holder"] or ("(granted)" if row["lease_expires_in_ms"] is not None else "-")
    return f"PAUSED {holder if holder != '-' else ''}".strip() if row["paused"] else holder


def cmd_pause(args: argparse.Namespace) -> int:
    print(queues.pause(store(load_settings()), args.queue, by="cli").text)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    print(queues.resume(store(load_settings()), args.queue, by="cli").text)
    return 0


def cmd_skip(args: argparse.Namespace) -> int:
    print(queues.skip_head(store(load_settings()), args.queue, by="cli").text)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(queues.cancel(store(settings), settings.database_url, args.id, by="cli").text)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(msgspec.json.format(msgspec.json.encode(messages.show(store(settings), settings.database_url, args.id)),
                              indent=2).decode())
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "pause", "stop handing out a queue's messages", "drip pause location:456:workflow:humanizer",
                    "Messages keep arriving; none is handed to a worker until drip resume.")
    p.add_argument("queue", help="the queue's name")
    p.set_defaults(func=cmd_pause)
    p = add_command(sub, "resume", "hand out a paused queue's messages again", "drip resume location:456:workflow:humanizer")
    p.add_argument("queue", help="the queue's name")
    p.set_defaults(func=cmd_resume)

    p = add_command(sub, "skip", "send a queue's head message to the dead letters so the queue goes on",
                    "drip skip location:456:workflow:humanizer",
                    "The head can be replayed later from the dead letters (drip dead replay).")
    p.add_argument("queue", help="the queue's name")
    p.set_defaults(func=cmd_skip)

    p = add_command(sub, "show", "show where a message is and its history",
                    "drip show 0193a5f2-7c1e-7b3a-9f00-2d1c3b4a5e6f",
                    "Scheduled, ready at position N, in hand, done, dead or cancelled; with its history rows.")
    p.add_argument("id", help="the message id that enqueue answered")
    p.set_defaults(func=cmd_show)

    p = add_command(sub, "cancel", "cancel a scheduled message by id", "drip cancel 0193a5f2-7c1e-7b3a-9f00-2d1c3b4a5e6f",
                    "Only a message still scheduled (not yet due) can be cancelled.")
    p.add_argument("id", help="the message id that enqueue answered")
    p.set_defaults(func=cmd_cancel)

    p = add_command(sub, "status", "show queues, leases and workers", "drip status --watch 2",
                    "Leader, workers, slots, and per queue: ready, in flight, scheduled, next run_at, lease holder.")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
                   help="redraw every SECONDS (default 2) until Ctrl-C")
    p.set_defaults(func=cmd_status)
