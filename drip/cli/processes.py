"""`drip web`, `drip supervisor`, `drip worker`, `drip console`, `drip dev`: the processes drip runs."""

from __future__ import annotations

import argparse
import threading

from drip.cli.common import add_command, load_settings, store
from drip.core import logs


def cmd_web(args: argparse.Namespace) -> int:
    from drip.run import serve

    settings = load_settings(web_processes=args.processes)
    logs.setup(settings.log_level, settings.log_format, process="web")
    return serve.run(settings, args.host or settings.host, args.port or settings.port)


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

    settings = load_settings(local=False)  # drip dev writes .drip/env; an old one must not steer it
    logs.setup(settings.log_level, settings.log_format, process="dev")
    return dev.run(args.host or settings.host, args.port or settings.port, force_embedded=args.embedded)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    def http_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="address to listen on (default DRIP_HOST, 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to listen on (default DRIP_PORT, 8000)")

    p = add_command(sub, "web", "run the webhook (Starlette under uvicorn)", "drip web --host 0.0.0.0 --port 8000 -p 2",
                    "It answers 202 once a message is stored in Redis; Redis is all it talks to.")
    http_options(p)
    p.add_argument("--processes", "-p", type=int, help="processes answering on the port (default DRIP_WEB_PROCESSES)")
    p.set_defaults(func=cmd_web)

    p = add_command(sub, "supervisor", "run the supervisor (leader election, grants, history recorder)",
                    "drip supervisor", "Run one or more; one leads, the others stand by.")
    p.set_defaults(func=cmd_supervisor)

    p = add_command(sub, "worker", "run the worker pool (DRIP_PROCESSES x DRIP_THREADS)", "drip worker -p 4 -t 8",
                    "A worker process that dies is replaced.")
    p.add_argument("--processes", "-p", type=int, help="worker processes (default DRIP_PROCESSES)")
    p.add_argument("--threads", "-t", type=int, help="threads per process (default DRIP_THREADS)")
    p.set_defaults(func=cmd_worker)

    p = add_command(sub, "console", "run the operator's console and /metrics (its own port)",
                    "drip console --port 8001",
                    "Pages and a JSON API over every queue, its messages and the dead letters, with actions; "
                    "DRIP_CONSOLE_TOKENS sets who may see and act.")
    p.add_argument("--host", help="address to listen on (default DRIP_CONSOLE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default DRIP_CONSOLE_PORT, 8001)")
    p.add_argument("--dev", action="store_true", help=argparse.SUPPRESS)  # drip dev: open on loopback w/o tokens
    p.set_defaults(func=cmd_console)

    p = add_command(sub, "dev", "run everything locally: db upgrade, web, supervisor, worker, console",
                    "drip dev --embedded",
                    "Starts embedded Redis and PostgreSQL where none answer (or with --embedded) and writes their "
                    "addresses to .drip/env, which every drip command started in this folder then uses. "
                    "A process that dies is replaced; Ctrl-C stops them all.")
    http_options(p)
    p.add_argument("--embedded", action="store_true", help="always use embedded Redis and PostgreSQL servers")
    p.set_defaults(func=cmd_dev)
