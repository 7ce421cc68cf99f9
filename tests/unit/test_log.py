"""Logging: one JSON shape for every logger, no local variables in tracebacks, quiet scheduler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from plsnap.log import configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    yield buffer
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()


def events(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_for_structlog_and_stdlib(stream: io.StringIO) -> None:
    """structlog and stdlib loggers both write one JSON object per line with level and timestamp."""
    structlog.get_logger("plsnap").warning("capture failed", error="boom")
    logging.getLogger("pymysql").warning("stdlib says %s", "hi")
    first, second = events(stream)
    assert first["event"] == "capture failed" and first["error"] == "boom" and first["level"] == "warning"
    assert second["event"] == "stdlib says hi" and second["logger"] == "pymysql"
    assert first["timestamp"].endswith("Z")


def test_tracebacks_carry_no_local_variables(stream: io.StringIO) -> None:
    """An exception is logged as its type and location only: never its message (which can quote a file) nor
    local variables (a password could be one)."""

    def connect(password: str) -> None:
        raise RuntimeError("connect failed")

    try:
        connect("Sup3r-Secret-In-A-Local")
    except RuntimeError:
        structlog.get_logger("plsnap").exception("unexpected")
    text = stream.getvalue()
    (event,) = events(stream)
    assert event["error_type"] == "RuntimeError"
    assert "test_log.py:" in event["error_at"]
    assert "connect failed" not in text
    assert "Sup3r-Secret-In-A-Local" not in text


def test_scheduler_chatter_hidden_above_debug(stream: io.StringIO) -> None:
    """APScheduler's per-run INFO lines are dropped at level info; its warnings still pass."""
    logging.getLogger("apscheduler.executors.default").info("Running job")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    assert [e["event"] for e in events(stream)] == ["Run time of job was missed"]
