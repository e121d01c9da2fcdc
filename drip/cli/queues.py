"""`drip status`, `drip show`, `drip pause`, `drip resume`, `drip skip`, `drip cancel`: queues and messages
as an operator sees them (the actions are drip.operations's, shared with the console)."""

from __future__ import annotations

import argparse

import msgspec

from drip.cli.common import load_settings, store
from drip.core.errors import DripError
from drip.core.messages import iso
from drip.db import queries
from drip.operations import messages, queues
from drip.store import status


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    s = store(settings)
    overview = status.overview(s.client, s.keys)
    try:
        overview["lateness"] = queries.lateness(settings.database_url)
    except DripError:
        overview["lateness"] = None  # history unreachable: Redis's view stands alone
    if args.json:
        print(msgspec.json.encode(overview).decode())
        return 0
    print(
        f"leader: {overview['leader'] or 'none'}   workers: {len(overview['workers'])}   "
        f"slots: {overview['slots']}   leases: {overview['leases']}   "
        f"history backlog: {overview['history_backlog']}   dead letters: {overview['dead_letters']}"
    )
    if overview["lateness"]:
        width = max(len("RELEASED BY WORKFLOW"), *(len(r["queue"]) for r in overview["lateness"]))
        print(f"{'RELEASED BY WORKFLOW':<{width}}  {'RELEASES':>8}  {'AVG LATE':>9}  {'WORST LATE':>10}  EARLY")
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
    p = sub.add_parser("pause", help="stop handing out a queue's messages")
    p.add_argument("queue")
    p.set_defaults(func=cmd_pause)
    p = sub.add_parser("resume", help="hand out a paused queue's messages again")
    p.add_argument("queue")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("skip", help="send a queue's head message to the dead letters so the queue goes on")
    p.add_argument("queue")
    p.set_defaults(func=cmd_skip)

    p = sub.add_parser("show", help="show where a message is and its history")
    p.add_argument("id", help="the message id that enqueue answered")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("cancel", help="cancel a scheduled message by id")
    p.add_argument("id", help="the message id that enqueue answered")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("status", help="show queues, leases and workers")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_status)
