"""`drip web`, `drip supervisor`, `drip worker`, `drip console`, `drip dev`: the processes drip runs."""

from __future__ import annotations

import argparse
import threading

from drip.cli.common import load_settings, store
from drip.core import logs


def cmd_web(args: argparse.Namespace) -> int:
    from drip.run import serve

    settings = load_settings(web_processes=args.processes)
    logs.setup(settings.log_level, settings.log_format, process="web")
    return serve.run(settings, args.host, args.port)


def cmd_supervisor(args: argparse.Namespace) -> int:
    from drip.run import actors
    from drip.run.broker import make_broker
    from drip.run.signals import stop_on_signals
    from drip.run.supervisor import Supervisor

    settings = load_settings()
    logs.setup(settings.log_level, settings.log_format, process="supervisor")
    broker = make_broker(settings)
    stop = threading.Event()
    stop_on_signals(stop)
    Supervisor(settings, store(settings), actors.Outbox(broker, settings)).run(stop)
    broker.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from drip.run import pool
    from drip.work.routes import Router

    settings = load_settings(processes=args.processes, threads=args.threads)
    Router.from_settings(settings)  # a bad DRIP_ROUTES or DRIP_HANDLER stops here, said once, not per process
    logs.setup(settings.log_level, settings.log_format, process="pool")
    return pool.run(settings)


def cmd_console(args: argparse.Namespace) -> int:
    from drip.console import serve

    settings = load_settings()
    logs.setup(settings.log_level, settings.log_format, process="console")
    return serve.run(settings, args.host, args.port, dev=args.dev)


def cmd_dev(args: argparse.Namespace) -> int:
    from drip.run import dev

    settings = load_settings()
    logs.setup(settings.log_level, settings.log_format, process="dev")
    return dev.run(args.host, args.port, force_embedded=args.embedded)


def add_parsers(sub: argparse._SubParsersAction) -> None:
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

    p = sub.add_parser("console", help="run the operator's console and /metrics (its own port)")
    p.add_argument("--host", help="address to listen on (default DRIP_CONSOLE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default DRIP_CONSOLE_PORT, 8001)")
    p.add_argument("--dev", action="store_true", help=argparse.SUPPRESS)  # drip dev: open on loopback w/o tokens
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("dev", help="run everything locally: db upgrade, web, supervisor, worker, console")
    http_options(p)
    p.add_argument("--embedded", action="store_true", help="always use embedded Redis and PostgreSQL servers")
    p.set_defaults(func=cmd_dev)
