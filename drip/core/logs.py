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


class _Stderr:
    """Whatever sys.stderr is when a line is written (loggers are cached; a test may swap the stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def setup(level: str = "info", fmt: str = "auto", *, process: str | None = None, to_stderr: bool = False) -> None:
    """Configure structlog and stdlib logging for this process; `process` names it in every line. Lines go
    to stdout, or stderr (the CLI's operator commands: their answer is stdout)."""
    stream = _Stderr() if to_stderr else sys.stdout
    numeric = _LEVELS[level]
    pretty = fmt == "console" or (fmt == "auto" and stream.isatty())
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if process:
        shared.append(_add_process(process))
    renderer = structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    # The services' JSON lines on stdout take the fast path (bytes); a terminal, or the CLI's few lines
    # on stderr (which a test may swap), go through text.
    fast = not pretty and not to_stderr
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(serializer=orjson.dumps) if fast else renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer) if fast else structlog.WriteLoggerFactory(
            stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
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
