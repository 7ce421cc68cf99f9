"""Helpers for integration tests: config files, plsnap subprocesses, and reading what they wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql

from plsnap.archive import ArchiveReader
from tests.devserver import DevServer


def write_config(path: Path, server: DevServer, user: Any, *, interval: str = "1s", **sections: dict[str, Any]) -> Path:
    """A TOML config for ``server`` and capture ``user``; extra ``sections`` are merged in."""
    values: dict[str, dict[str, Any]] = {
        "mysql": {"socket": str(server.socket), "user": user.name, "password_file": str(user.password_file),
                  "connect_timeout": "2s", "read_timeout": "3s", "write_timeout": "3s", "statement_timeout": "2s"},
        "capture": {"interval": interval},
        "archive": {"data_dir": str(path.parent / "archive"), "fsync": True},
        "log": {"format": "json", "level": "debug"},
    }  # fmt: skip
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    lines = []
    for section, items in values.items():
        lines.append(f"[{section}]")
        for key, value in items.items():
            rendered = ("true" if value else "false") if isinstance(value, bool) else (
                str(value) if isinstance(value, int) else f'"{value}"')  # fmt: skip
            lines.append(f"{key} = {rendered}")
    path.write_text("\n".join(lines) + "\n")
    return path


def plsnap(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the plsnap CLI in a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "plsnap.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


class Daemon:
    """A ``plsnap daemon`` subprocess whose stdout (JSON log lines) is collected in a thread."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plsnap.cli", "daemon", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


@contextmanager
def daemon(config: Path, env: dict[str, str] | None = None) -> Iterator[Daemon]:
    """Run a daemon for the duration of the block; SIGKILL it if the block fails."""
    proc = Daemon(config, env)
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(10)
        proc._reader.join(5)
        if proc.proc.stdout is not None:
            proc.proc.stdout.close()


def records(instance_dir: Path) -> list[dict[str, Any]]:
    """Every record in the archive, in ts order."""
    return list(ArchiveReader(instance_dir).iter_records())


def wait_for(predicate: Any, timeout: float, what: str, poll: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for_records(instance_dir: Path, count: int, timeout: float = 30, **match: Any) -> list[dict[str, Any]]:
    """Wait until at least ``count`` records (matching ``match`` key values) are readable."""

    def ready() -> list[dict[str, Any]] | None:
        found = [r for r in records(instance_dir) if all(r.get(k) == v for k, v in match.items())]
        return found if len(found) >= count else None

    return wait_for(ready, timeout, f"{count} records matching {match}")  # type: ignore[no-any-return]


class Sleeper:
    """Runs ``SELECT SLEEP(seconds)`` (plus a marker comment) as root in a background thread."""

    def __init__(self, server: DevServer, seconds: float, marker: str, sql: str | None = None) -> None:
        self.sql = sql or f"SELECT SLEEP({seconds}) /* {marker} */"
        self.started_at = 0.0
        self.ended_at = 0.0
        self.error: BaseException | None = None
        self._conn = server.root_connect()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self._conn.cursor() as cur:
                self.started_at = time.time()
                cur.execute(self.sql)
                cur.fetchall()
        except pymysql.MySQLError as exc:
            self.error = exc
        finally:
            self.ended_at = time.time()
            self._conn.close()

    def __enter__(self) -> Sleeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(60)
