"""The only place that configures logging: structlog to stdout, JSON unless stdout is a terminal.

Standard-library loggers (apscheduler, pymysql) go through the same ``ProcessorFormatter`` so every line has one
shape. An exception is logged as its type and where it was raised, never as its message, its traceback text or
its local variables: an exception message can quote a file (an option file with a password) or a statement, and
structlog's default traceback would print local variables.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> bool:
    """Route structlog and stdlib logging to ``stream`` (stdout) as JSON or console lines at ``level``; True
    when the console renderer was chosen (a person is watching)."""
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
        renderer = structlog.dev.ConsoleRenderer()
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, safe_exception, renderer]
    else:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            safe_exception,
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
    return use_console


def safe_exception(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Replace ``exc_info`` with ``error_type`` and ``error_at`` (innermost frames, file:line): no message."""
    del logger, method
    info = event.pop("exc_info", None)
    event.pop("exception", None)
    event.pop("stack_info", None)
    if info is True:
        info = sys.exc_info()
    if isinstance(info, BaseException):
        info = (type(info), info, info.__traceback__)
    if isinstance(info, tuple) and len(info) == 3 and info[0] is not None:
        frames = traceback.extract_tb(info[2])[-3:]
        event["error_type"] = info[0].__name__
        event["error_at"] = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
    return event


def set_level(level: str) -> None:
    """Change the log level at run time (SIGHUP reload)."""
    logging.getLogger().setLevel(LEVELS[level])
    _quiet_scheduler(level)


def _quiet_scheduler(level: str) -> None:
    """APScheduler logs two lines per job run at INFO: keep them for ``debug`` only (warnings always pass)."""
    logging.getLogger("apscheduler").setLevel(logging.INFO if level == "debug" else logging.WARNING)
