"""structlog configuration, once per process: JSON lines on stdout, pretty on a terminal.

Levels below DRIP_LOG_LEVEL are filtered by the bound logger itself, so a
per-message debug event costs nearly nothing in production. drip's own JSON lines
take structlog's fast path: orjson renders bytes and a BytesLogger writes them, with
no standard-library logging in between (about half the cost of a line through
json.dumps and a text stream, measured per line). Standard-library loggers (uvicorn,
dramatiq) are routed through an equivalent renderer.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def setup(level: str = "info", fmt: str = "auto", *, process: str | None = None) -> None:
    """Configure structlog and stdlib logging for this process; `process` names it in every line."""
    numeric = _LEVELS[level]
    pretty = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if process:
        shared.append(_add_process(process))
    renderer = structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info,
                    renderer if pretty else structlog.processors.JSONRenderer(serializer=orjson.dumps)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(sys.stdout) if pretty else structlog.BytesLoggerFactory(
            sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # dramatiq's own per-message chatter is noise next to drip's events.
    logging.getLogger("dramatiq").setLevel(max(numeric, logging.WARNING))


def _add_process(name: str):
    def add(_logger, _method, event: dict) -> dict:
        event.setdefault("process", name)
        return event

    return add


def _drop_color_message(_logger, _method, event: dict) -> dict:
    """uvicorn attaches an ANSI-coloured copy of its message; JSON lines don't need it."""
    event.pop("color_message", None)
    return event


def get(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
