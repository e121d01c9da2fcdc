"""The `drip` command: one subcommand per process or task.

A DripError is printed as one line and exits 1; nothing prints a traceback
at a user for a mistake they can fix.
"""

from __future__ import annotations

import argparse
import sys
import threading

import msgspec
import psycopg

from drip import __version__, config, db, logs
from drip.cancel import cancel_message
from drip.contacts import redact_json
from drip.deadletters import CHUNK, DeadLetter, DeadLetters
from drip.errors import DripError, NotFound
from drip.keys import Keys
from drip.messages import iso, now_ms
from drip.routes import Router
from drip.scripts import REDIS_DOWN, redis_client
from drip.stopping import stop_on_signals
from drip.store import Store


def _settings(**overrides: object) -> config.Settings:
    return config.load(**{k: v for k, v in overrides.items() if v is not None})


def _store(settings: config.Settings) -> Store:
    return Store.from_settings(settings)


def cmd_web(args: argparse.Namespace) -> int:
    from drip import serve

    settings = _settings(web_processes=args.processes)
    logs.setup(settings.log_level, settings.log_format, process="web")
    return serve.run(settings, args.host, args.port)


def cmd_supervisor(args: argparse.Namespace) -> int:
    from drip import actors
    from drip.broker import make_broker
    from drip.supervisor import Supervisor

    settings = _settings()
    logs.setup(settings.log_level, settings.log_format, process="supervisor")
    broker = make_broker(settings)
    stop = threading.Event()
    stop_on_signals(stop)
    supervisor = Supervisor(settings, _store(settings), actors.Outbox(broker, settings))
    supervisor.run(stop)
    broker.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from drip import pool

    settings = _settings(processes=args.processes, threads=args.threads)
    Router.from_settings(settings)  # a bad DRIP_ROUTES or DRIP_HANDLER stops here, said once, not per process
    logs.setup(settings.log_level, settings.log_format, process="pool")
    return pool.run(settings)


def cmd_dev(args: argparse.Namespace) -> int:
    from drip import dev

    settings = _settings()
    logs.setup(settings.log_level, settings.log_format, process="dev")
    return dev.run(args.host, args.port, force_embedded=args.embedded)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings()
    applied = db.upgrade(settings.database_url)
    target = db.describe(settings.database_url)
    print(f"applied {', '.join(applied)} to {target}" if applied else f"{target} is up to date")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings()
    overview = _store(settings).overview()
    try:
        overview["lateness"] = db.lateness(settings.database_url)
    except (DripError, psycopg.Error):
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
    print(f"{'QUEUE':<{width}}  {'READY':>7}  {'IN-FLIGHT':>9}  {'SCHEDULED':>9}  {'NEXT RUN_AT':<24}  LEASE HOLDER")
    for r in rows:
        holder = r["lease_holder"] or ("(granted)" if r["lease_expires_in_ms"] is not None else "-")
        if r["paused"]:
            holder = f"PAUSED {holder if holder != '-' else ''}".strip()
        next_run = iso(r["next_run_at_ms"]) if r["next_run_at_ms"] is not None else "-"
        print(f"{r['queue']:<{width}}  {r['ready']:>7}  {r['in_flight']:>9}  {r['scheduled']:>9}  {next_run:<24}  {holder}")
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from datetime import datetime

    from drip.ghlstate import GhlState

    settings = _settings()
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


def cmd_cancel(args: argparse.Namespace) -> int:
    settings = _settings()
    queue = cancel_message(_store(settings), settings.database_url, args.id)
    print(f"cancelled {args.id} (queue {queue})")
    return 0


def _dead(settings: config.Settings) -> DeadLetters:
    return DeadLetters(redis_client(settings.redis_url), Keys(settings.prefix))


def _chosen_letters(dead: DeadLetters, args: argparse.Namespace) -> list[DeadLetter]:
    """The dead letters an `ID | --queue Q | --all` choice names; an ID that is not dead is an error."""
    if args.id:
        letter = dead.get(args.id)
        if letter is None:
            raise NotFound(f"no dead letter {args.id} (see drip dead list)")
        return [letter]
    return dead.list(args.queue)  # --queue Q, or --all (queue None)


def cmd_dead_list(args: argparse.Namespace) -> int:
    letters = _dead(_settings()).list(args.queue)
    if args.json:
        print(msgspec.json.encode([_letter_json(d) for d in letters]).decode())
        return 0
    if not letters:
        print("no dead letters")
        return 0
    width = max(len("QUEUE"), *(len(d.queue) for d in letters))
    print(f"{'ID':<36}  {'QUEUE':<{width}}  {'ATTEMPTS':>8}  {'FAILED AT':<24}  ERROR")
    for d in letters:
        print(f"{d.id:<36}  {d.queue:<{width}}  {d.attempts:>8}  {iso(d.failed_at_ms):<24}  {d.error[:80]}")
    return 0


def _letter_json(d: DeadLetter) -> dict:
    return {"id": d.id, "queue": d.queue, "attempts": d.attempts, "error": d.error, "failed_at": iso(d.failed_at_ms),
            "enqueued_at": iso(d.enqueued_ms), "run_at": iso(d.run_at_ms), "payload": msgspec.Raw(redact_json(d.payload))}


def cmd_dead_show(args: argparse.Namespace) -> int:
    letter = _dead(_settings()).get(args.id)
    if letter is None:
        raise NotFound(f"no dead letter {args.id} (see drip dead list)")
    print(msgspec.json.format(msgspec.json.encode(_letter_json(letter)), indent=2).decode())
    return 0


def cmd_dead_replay(args: argparse.Namespace) -> int:
    dead = _dead(_settings())
    letters = _chosen_letters(dead, args)
    total = len(letters)

    def progress(done: int) -> None:
        if total > CHUNK:
            print(f"replayed {done}/{total}", file=sys.stderr, flush=True)

    done = dead.replay(letters, to_head=not args.tail, progress=progress)
    print(f"replayed {done} message{'s' * (done != 1)} to the {'tail' if args.tail else 'head'} of their queue")
    return 0


def cmd_dead_purge(args: argparse.Namespace) -> int:
    dead = _dead(_settings())
    purged = dead.purge(_chosen_letters(dead, args))
    print(f"purged {purged} dead letter{'s' * (purged != 1)}")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    changed = _store(_settings()).pause(args.queue)
    print(f"paused {args.queue}" if changed else f"{args.queue} was paused already")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    changed = _store(_settings()).resume(args.queue)
    print(f"resumed {args.queue}" if changed else f"{args.queue} was not paused")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drip", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"drip {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def http_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")

    p = sub.add_parser("web", help="run the webhook (Starlette under uvicorn)")
    http_options(p)
    p.add_argument("--processes", "-p", type=int, help="processes answering on the port (default DRIP_WEB_PROCESSES)")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("supervisor", help="run the supervisor (leader election, grants, history recorder)")
    p.set_defaults(func=cmd_supervisor)

    p = sub.add_parser("worker", help="run the worker pool (DRIP_PROCESSES x DRIP_THREADS)")
    p.add_argument("--processes", "-p", type=int, help="worker processes (default DRIP_PROCESSES)")
    p.add_argument("--threads", "-t", type=int, help="threads per process (default DRIP_THREADS)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("dev", help="run everything locally: db upgrade, web, supervisor, worker")
    http_options(p)
    p.add_argument("--embedded", action="store_true", help="always use embedded Redis and PostgreSQL servers")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("db", help="database tasks")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="TASK")
    db_sub.add_parser("upgrade", help="create the database if needed and apply missing migrations").set_defaults(
        func=cmd_db_upgrade
    )

    p = sub.add_parser("dead", help="dead letters: list, show, replay, purge")
    dead_sub = p.add_subparsers(dest="dead_command", required=True, metavar="TASK")
    d = dead_sub.add_parser("list", help="list dead letters")
    d.add_argument("--queue", help="only this queue's")
    d.add_argument("--json", action="store_true", help="print JSON for scripts")
    d.set_defaults(func=cmd_dead_list)
    d = dead_sub.add_parser("show", help="show one dead letter, payload included")
    d.add_argument("id")
    d.set_defaults(func=cmd_dead_show)
    for name, func, what in (("replay", cmd_dead_replay, "put dead letters back into their queue"),
                             ("purge", cmd_dead_purge, "delete dead letters for good")):
        d = dead_sub.add_parser(name, help=what)
        choice = d.add_mutually_exclusive_group(required=True)
        choice.add_argument("id", nargs="?", help="one dead letter's message id")
        choice.add_argument("--queue", help="every dead letter of this queue")
        choice.add_argument("--all", action="store_true", help="every dead letter")
        if name == "replay":
            d.add_argument("--tail", action="store_true", help="at the tail of the queue (default: at its head)")
        d.set_defaults(func=func)

    p = sub.add_parser("pause", help="stop handing out a queue's messages")
    p.add_argument("queue")
    p.set_defaults(func=cmd_pause)
    p = sub.add_parser("resume", help="hand out a paused queue's messages again")
    p.add_argument("queue")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("clock", help="move the clock business hours are judged by (rehearsals)")
    clock = p.add_mutually_exclusive_group(required=True)
    clock.add_argument("--at", help="judge business hours as if it were this ISO-8601 time (with offset)")
    clock.add_argument("--reset", action="store_true", help="back to the wall clock")
    p.set_defaults(func=cmd_clock)

    p = sub.add_parser("cancel", help="cancel a scheduled message by id")
    p.add_argument("id", help="the message id that enqueue answered")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("status", help="show queues, leases and workers")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
