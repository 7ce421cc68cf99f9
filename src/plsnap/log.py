"""The only place that configures logging: structlog to stdout, JSON unless stdout is a terminal.

Standard-library loggers (apscheduler, pymysql) go through the same ``ProcessorFormatter`` so every line has one
shape. Tracebacks are rendered without local variables: structlog's default would print them, and a password
in a local variable would leak into the log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stdout) as JSON or console lines at ``level``."""
    stream = stream or sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    else:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    _quiet_scheduler(level)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def set_level(level: str) -> None:
    """Change the log level at run time (SIGHUP reload)."""
    logging.getLogger().setLevel(LEVELS[level])
    _quiet_scheduler(level)


def _quiet_scheduler(level: str) -> None:
    """APScheduler logs two lines per job run at INFO: keep them for ``debug`` only (warnings always pass)."""
    logging.getLogger("apscheduler").setLevel(logging.INFO if level == "debug" else logging.WARNING)
