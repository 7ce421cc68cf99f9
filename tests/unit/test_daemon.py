"""The recorder and the daemon in-process, against a canned MySQL 8.0 behind the connection seam (tests/fakes.py):
what reaches the archive and the heartbeat, one persistent connection, a clean stop on SIGTERM, and a reload that
keeps the injected connector."""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from plsnap.archive.layout import HEARTBEAT_NAME
from plsnap.archive.reader import ArchiveReader
from plsnap.config import Config, load_config
from plsnap.daemon import Daemon
from plsnap.log import configure_logging
from plsnap.model import parse_ts
from plsnap.recorder import Recorder
from plsnap.source import QUERIES, Source
from tests.fakes import FakeServer, mysql80, row

ACTIVE = row(11, "app", "10.0.0.5:5100", "shop", "Query", 7, "executing", "SELECT * FROM orders")


def config(tmp_path: Path, **sections: dict[str, Any]) -> Config:
    """db.example over TCP, an empty option file (never ~/.my.cnf), the archive under tmp_path."""
    option_file = tmp_path / "empty.cnf"
    option_file.write_text("[client]\n")
    values: dict[str, dict[str, Any]] = {
        "mysql": {"host": "db.example", "user": "plsnap", "defaults_file": str(option_file), "ssl_mode": "disabled",
                  "connect_timeout": "1s", "read_timeout": "1s"},
        "capture": {"interval": "1s"},
        "archive": {"data_dir": str(tmp_path / "archive"), "instance": "db1", "fsync": False},
    }  # fmt: skip
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    return load_config(None, environ={}, overrides=values)


def records(cfg: Config) -> list[dict[str, Any]]:
    with ArchiveReader(cfg.instance_dir) as reader:
        return list(reader.iter_records())


def heartbeat(cfg: Config) -> dict[str, Any]:
    beat: dict[str, Any] = orjson.loads((cfg.instance_dir / HEARTBEAT_NAME).read_bytes())
    return beat


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """The daemon installs SIGTERM/SIGINT/SIGHUP handlers in this process: put pytest's back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_recorder_writes_samples_gaps_and_the_heartbeat(tmp_path: Path) -> None:
    """A sample and a failed attempt both reach the archive (the failure as a gap line naming the address); the
    heartbeat carries the interval the recorder ran with and says when it stopped."""
    server = mysql80(sessions=[ACTIVE])
    cfg = config(tmp_path, capture={"interval": "7s"})
    recorder = Recorder(cfg, Source(cfg, "pw", connector=server.connector()))
    try:
        recorder.start()
        good = recorder.capture()
        assert good is not None and good.written
        beat = heartbeat(cfg)
        assert beat["ok"] is True and beat["running"] is True and beat["interval_s"] == 7.0
        assert beat["account"] == "plsnap@localhost"
        server.unreachable = "connection refused"
        recorder.source.close_connection()
        bad = recorder.capture()
        assert bad is not None and bad.written and bad.snapshot.is_gap
        assert recorder.failures == 1
        assert heartbeat(cfg)["error"] == "connect to db.example:3306 failed: connection refused"
        recorder.mark_stopped()
        assert heartbeat(cfg)["running"] is False
    finally:
        recorder.close()
    first, second = records(cfg)
    assert first["source"] == "performance_schema" and [s["id"] for s in first["sessions"]] == [11]
    assert second["sessions"] is None and "db.example:3306" in second["error"]


def test_a_sample_costs_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With fsync on, a sample in a partition already open fsyncs once (its line); the heartbeat, rewritten every
    sample, is replaced atomically but not fsynced, while the last one (daemon stopped) is."""
    server = mysql80(sessions=[ACTIVE])
    cfg = config(tmp_path, archive={"fsync": True, "rollups": False})
    recorder = Recorder(cfg, Source(cfg, "pw", connector=server.connector()))
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    try:
        recorder.start()
        assert recorder.capture() is not None
        monkeypatch.setattr(os, "fsync", counting_fsync)
        for _ in range(3):
            attempt = recorder.capture()
            assert attempt is not None and attempt.written
        assert len(synced) == 3, synced
        assert heartbeat(cfg)["running"] is True
        synced.clear()
        recorder.mark_stopped()
        assert len(synced) >= 1 and heartbeat(cfg)["running"] is False
    finally:
        recorder.close()


def stop_after(daemon: Daemon, attempts: int) -> threading.Thread:
    """SIGTERM this process once the daemon has made ``attempts`` capture attempts (its handler is installed
    before the first one)."""

    def watch() -> None:
        while daemon.recorder.attempts < attempts:
            if daemon._main_done.wait(0.05):
                return
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("restore_signals")
def test_daemon_samples_on_one_connection_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The daemon samples through the injected connector on one persistent connection, and SIGTERM ends it
    with exit 0, every attempt written, and a heartbeat saying it stopped."""
    server = mysql80(sessions=[ACTIVE])
    cfg = config(tmp_path)
    daemon = Daemon(cfg, connector=server.connector())
    watcher = stop_after(daemon, 3)
    assert daemon.run() == 0
    watcher.join(5)
    lines = records(cfg)
    assert len(lines) == daemon.recorder.attempts >= 3
    assert all(line["source"] == "performance_schema" and line["error"] is None for line in lines)
    assert server.connects == 1
    assert server.queries.count(QUERIES["ps"]) == len(lines)
    assert heartbeat(cfg)["running"] is False


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("restore_signals")
def test_reload_keeps_the_injected_connector(tmp_path: Path) -> None:
    """A reload that changes [capture] builds a new Source through the same connector: the samples after it use
    the new setting against the same server (not a real connection to db.example)."""
    server = mysql80(sessions=[ACTIVE])
    cfg = config(tmp_path)
    changed = config(tmp_path, capture={"source": "show"})
    daemon = Daemon(cfg, reload=lambda: changed, connector=server.connector())
    daemon.reload()
    watcher = stop_after(daemon, 2)
    assert daemon.run() == 0
    watcher.join(5)
    lines = records(cfg)
    assert lines and all(line["source"] == "show_full_processlist" and line["error"] is None for line in lines)
    assert server.queries.count(QUERIES["show"]) == len(lines)


def test_a_reload_that_fails_unexpectedly_is_rejected_and_says_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    """Whatever the reload raises, the running config stays, the rejection is logged, and systemd hears READY=1
    after RELOADING=1 (else it would wait for the reload forever)."""
    cfg = config(tmp_path)

    def broken() -> Config:
        raise OverflowError("cannot convert float infinity to integer")

    told: list[str] = []
    monkeypatch.setattr("plsnap.daemon.notify", told.append)
    daemon = Daemon(cfg, reload=broken, connector=mysql80(sessions=[ACTIVE]).connector())
    daemon.reload()
    assert daemon.config is cfg
    assert told[0].startswith("RELOADING=1") and told[-1] == "READY=1", told
    assert "config reload rejected" in log_stream.getvalue() and "OverflowError" in log_stream.getvalue()


def test_a_rate_on_a_counter_the_server_lacks_is_said_once(tmp_path: Path, log_stream: io.StringIO) -> None:
    """A rate condition whose only counter the server does not report (a typo) is said once in the log, even
    though the check then reads no counter at all."""
    server = mysql80(sessions=[ACTIVE])
    cfg = config(tmp_path, capture={"interval": "5s"}, trigger={"rates": ["Questoins>5000"], "min_free": "0"})
    daemon = Daemon(cfg, connector=server.connector())
    daemon.recorder.start()
    try:
        assert daemon.recorder.capture() is not None
        for _ in range(3):
            daemon.bursts.check()
    finally:
        daemon.recorder.close()
    said = [line for line in log_stream.getvalue().splitlines() if "does not report" in line]
    assert len(said) == 1 and "Questoins" in said[0], log_stream.getvalue()[-2000:]


def test_healthy_reports_the_last_failure(tmp_path: Path) -> None:
    """/healthz's verdict: no attempt yet is unhealthy; a recent failing attempt is alive but says why."""
    server: FakeServer = mysql80(unreachable="connection refused")
    cfg = config(tmp_path)
    daemon = Daemon(cfg, connector=server.connector())
    try:
        assert daemon.healthy() == (False, "no capture attempt yet")
        daemon.recorder.capture()
        ok, detail = daemon.healthy()
        assert ok and "failing: connect to db.example:3306 failed: connection refused" in detail
    finally:
        daemon.recorder.close()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    yield buffer
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()


def test_one_log_line_per_sample_when_someone_is_watching(tmp_path: Path, log_stream: io.StringIO) -> None:
    """`make run` on a terminal: run_daemon's sample_lines logs every sample at info (sessions, running, bytes);
    without it (a service's journal) samples stay at debug and an info log shows none."""
    server = mysql80(sessions=[ACTIVE])
    cfg = config(tmp_path)
    recorder = Recorder(cfg, Source(cfg, "pw", connector=server.connector()))
    try:
        recorder.capture()
        recorder.sample_level = "info"
        recorder.capture()
    finally:
        recorder.close()
    samples = [e for e in map(orjson.loads, log_stream.getvalue().splitlines()) if e["event"] == "sample"]
    assert len(samples) == 1
    assert samples[0]["level"] == "info" and samples[0]["sessions"] == 1 and samples[0]["running"] == 1


def test_console_logging_is_chosen_on_a_terminal() -> None:
    """configure_logging reports the console renderer for a terminal (what makes `make run` print per sample)
    and JSON for a pipe."""
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty, io.StringIO() as pipe:
            assert configure_logging("info", "auto", stream=tty) is True
            assert configure_logging("info", "auto", stream=pipe) is False
    finally:
        os.close(leader)
        os.close(follower)
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()


SECOND = row(12, "app", "10.0.0.6:5100", "shop", "Query", 3, "executing", "SELECT * FROM items")


@pytest.mark.timeout(90)
@pytest.mark.usefixtures("restore_signals")
def test_a_burst_survives_a_reload_and_a_stop_writes_no_failed_sample(tmp_path: Path) -> None:
    """A burst (two running sessions, more than 1): a SIGHUP that changes the interval in the middle of it
    keeps the base capture paused until its end; its closing sample is one burst interval after its last
    burst sample (not milliseconds); and a SIGTERM while a sample hangs writes no "failed" sample."""
    server = mysql80(sessions=[ACTIVE, SECOND])
    trigger = {"running_sessions": 1, "burst_interval": "1s", "burst_duration": "4s", "cooldown": "1h",
               "min_free": "0"}  # fmt: skip
    cfg = config(tmp_path, capture={"interval": "2s"}, trigger=trigger)
    changed = config(tmp_path, capture={"interval": "3s"}, trigger=trigger)
    daemon = Daemon(cfg, reload=lambda: changed, connector=server.connector())

    def script() -> None:
        deadline = time.monotonic() + 60
        while not daemon.bursts.running and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGHUP)
        while daemon.bursts.running and time.monotonic() < deadline:
            time.sleep(0.05)
        attempts = daemon.recorder.attempts
        while daemon.recorder.attempts <= attempts and time.monotonic() < deadline:
            time.sleep(0.05)
        server.hang_on = "FROM performance_schema"
        while not daemon.recorder.lock.locked() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=script, daemon=True)
    thread.start()
    assert daemon.run() == 0
    thread.join(10)
    lines = records(cfg)
    assert not [line for line in lines if line.get("error")], "a stop is not a failed sample"
    events = [i for i, line in enumerate(lines) if "marker" in line]
    assert [lines[i]["marker"]["event"] for i in events] == ["burst_start", "burst_end"]
    inside = lines[events[0] + 1 : events[1]]
    assert [line["interval_s"] for line in inside[:-1]] == [1.0] * (len(inside) - 1), "no base sample inside"
    assert inside[-1]["interval_s"] == 3.0, "the closing sample carries the reloaded base interval"
    slots = [math.floor(parse_ts(line["ts"]).timestamp()) for line in inside]
    assert 4 <= len(inside) <= 6
    assert all(b - a == 1 for a, b in itertools.pairwise(slots)), "one sample per 1 s slot, the closing one too"


def test_a_restarted_daemon_keeps_the_burst_guards(tmp_path: Path) -> None:
    """The markers of a burst that an earlier run recorded hold the cooldown after a restart (a crash loop
    cannot start a burst per restart); a daemon without conditions reads nothing."""
    server = mysql80(sessions=[ACTIVE, SECOND])
    trigger = {"running_sessions": 1, "cooldown": "1h", "min_free": "0"}
    cfg = config(tmp_path, trigger=trigger)
    first = Daemon(cfg, connector=server.connector())
    first.recorder.start()
    assert first.recorder.capture() is not None
    first.recorder.write_marker({"event": "burst_start", "condition": "running sessions > 1"})
    first.recorder.write_marker({"event": "burst_end", "interrupted": False})
    first.recorder.close()
    again = Daemon(cfg, connector=server.connector())
    try:
        now = datetime.now(UTC)
        assert again.bursts.guards.refusal(now, None) is None
        again.bursts.restore(now)
        assert again.bursts.guards.refusal(now, None) == "cooldown"
        assert len(again.bursts.guards.started) == 1
    finally:
        again.recorder.close()
