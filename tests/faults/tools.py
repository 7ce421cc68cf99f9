"""Helpers for the fault-injection scenarios: log events, archive checks, /proc figures, misbehaving servers."""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from plsnap.archive import ArchiveReader, list_partitions
from tests.integration.harness import Daemon, daemon


def log_events(output: Daemon | str, prefix: str | None = None) -> list[dict[str, Any]]:
    """A daemon's JSON log lines (as dicts) whose ``event`` starts with ``prefix`` (all lines if None)."""
    found = []
    for line in output.splitlines() if isinstance(output, str) else list(output.lines):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and (prefix is None or str(entry.get("event", "")).startswith(prefix)):
            found.append(entry)
    return found


def zstd_test(path: Path) -> subprocess.CompletedProcess[str]:
    """``zstd -t`` on one file (returncode 0 when every frame is complete and its checksum matches)."""
    return subprocess.run(["zstd", "-q", "-t", str(path)], capture_output=True, text=True, check=False)


def check_archive(instance_dir: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(records in ts order, reader problems mentioning undecodable data, partitions failing ``zstd -t``)."""
    reader = ArchiveReader(instance_dir)
    found = list(reader.iter_records())
    undecodable = [p for p in reader.problems if "undecodable" in p]
    failing = []
    for part in list_partitions(instance_dir).partitions:
        result = zstd_test(part.path)
        if result.returncode != 0:
            failing.append(f"{part.path}: {result.stderr.strip()}")
    return found, undecodable, failing


def proc_threads(pid: int) -> int:
    """The ``Threads:`` count of a live process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads line for pid {pid}")


def proc_sockets(pid: int) -> int:
    """How many of a live process's file descriptors are sockets."""
    count = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    for entry in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            if str(entry.readlink()).startswith("socket:"):
                count += 1
    return count


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket | None
    budget: int | None = None  # server->client bytes still forwarded once the stall is armed
    stalled_bytes: int = 0
    dripping: bytearray = field(default_factory=bytearray)  # server->client bytes waiting to be dripped
    next_drip: float = 0.0


@dataclass
class MisbehavingServer:
    """A TCP listener on 127.0.0.1 that misbehaves like a hung MySQL server, run by one selector thread.

    With ``upstream`` None it accepts connections and never says a word (no handshake). With ``upstream``
    (host, port) it is a proxy: everything is forwarded until the client sends a statement containing
    ``stall_marker``; then only ``stall_after`` more bytes of the answer reach the client and the rest is
    swallowed, so the client hangs mid-result. With ``drip`` (seconds) the proxy forwards the server's bytes
    one at a time, one every ``drip`` seconds: each read completes within any read timeout, yet a greeting
    takes minutes. With ``unaccepted`` it never accepts: its backlog of one is taken by a connection of its
    own, so the kernel drops every new SYN and a client's TCP connect hangs. Every socket is closed on
    :meth:`close`.
    """

    upstream: tuple[str, int] | None = None
    unaccepted: bool = False
    stall_marker: bytes = b"PROCESSLIST"
    stall_after: int = 40
    drip: float | None = None
    accepted: int = 0
    stalls: int = 0
    port: int = 0
    _listener: socket.socket = field(init=False, repr=False)
    _selector: selectors.DefaultSelector = field(init=False, repr=False)
    _pairs: dict[socket.socket, _Pair] = field(default_factory=dict, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _filler: socket.socket | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> MisbehavingServer:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0 if self.unaccepted else 64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        if self.unaccepted:
            self._filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        else:
            self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._loop, name="misbehaving-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def open_connections(self) -> int:
        """Client connections currently held open."""
        return len({id(p) for p in self._pairs.values()})

    def close(self) -> None:
        """Stop the thread and close every socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for sock in {*self._pairs, self._listener, *([self._filler] if self._filler else [])}:
            with contextlib.suppress(OSError):
                sock.close()
        self._pairs.clear()
        self._selector.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._relay(sock)
            if self.drip is not None:
                self._drip_one()

    def _drip_one(self) -> None:
        now = time.monotonic()
        for pair in list({id(p): p for p in self._pairs.values()}.values()):
            if pair.dripping and now >= pair.next_drip:
                byte = bytes(pair.dripping[:1])
                del pair.dripping[:1]
                pair.next_drip = now + (self.drip or 0.0)
                try:
                    pair.client.sendall(byte)
                except OSError:
                    self._drop(pair)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        client.setblocking(True)
        self.accepted += 1
        upstream = None
        if self.upstream is not None:
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                return
            upstream.setblocking(True)
        pair = _Pair(client, upstream)
        self._pairs[client] = pair
        self._selector.register(client, selectors.EVENT_READ)
        if upstream is not None:
            self._pairs[upstream] = pair
            self._selector.register(upstream, selectors.EVENT_READ)

    def _drop(self, pair: _Pair) -> None:
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            self._pairs.pop(sock, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()

    def _relay(self, sock: socket.socket) -> None:
        pair = self._pairs.get(sock)
        if pair is None:
            return
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(pair)
            return
        try:
            if sock is pair.client:
                if pair.upstream is None:
                    return  # a hung server reads and never answers
                if pair.budget is None and self.stall_marker in data:
                    pair.budget = self.stall_after
                    self.stalls += 1
                pair.upstream.sendall(data)
            else:
                if pair.budget is not None:
                    forward, pair.budget = data[: pair.budget], max(0, pair.budget - len(data))
                    pair.stalled_bytes += len(data) - len(forward)
                    data = forward
                if data and self.drip is not None:
                    pair.dripping += data
                elif data:
                    pair.client.sendall(data)
        except OSError:
            self._drop(pair)


def wait_until(predicate: Any, timeout: float, poll: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy (returned) or ``timeout`` seconds pass (returns the last value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(poll)
        value = predicate()
    return value


_LIB_GLOBS = (
    ("/usr/lib", "*/faketime/libfaketimeMT.so.1"),
    ("/usr/lib", "faketime/libfaketimeMT.so.1"),
    ("/usr/local/lib", "faketime/libfaketimeMT.so.1"),
)
_INSTALL_HINT = "install libfaketime: `apt-get install -y faketime` (scripts/ensure-system-deps.sh)"


def faketime_lib() -> str:
    """The multithreaded libfaketime preload library; the test fails with an install hint if it is missing."""
    for root, pattern in _LIB_GLOBS:
        found = sorted(Path(root).glob(pattern))
        if found:
            return str(found[0])
    pytest.fail(f"the clock-jump scenarios need libfaketime, which is not installed; {_INSTALL_HINT}")


class FakeClock:
    """The offset file a daemon started with :meth:`env` reads on every clock call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.set(0)

    def env(self) -> dict[str, str]:
        """Environment for a process whose wall clock follows this file (monotonic clock left real)."""
        return {
            "LD_PRELOAD": faketime_lib(),
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def set(self, offset_seconds: int) -> None:
        """Step the fake wall clock to real time + ``offset_seconds`` (atomically, via rename)."""
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(f"{offset_seconds:+d}\n")
        temp.replace(self.path)
        self.offset = offset_seconds

    def now(self) -> datetime:
        """What the daemon's wall clock reads now."""
        return datetime.now(UTC) + timedelta(seconds=self.offset)


def mid_hour_offset() -> int:
    """An offset that puts the fake clock at about HH:30:00 of the current real hour."""
    now = datetime.now(UTC)
    return 1800 - (now.minute * 60 + now.second)


def run_daemon(config: Path, env: dict[str, str] | None = None) -> contextlib.AbstractContextManager[Daemon]:
    """:func:`tests.integration.harness.daemon` with faulthandler on, so a hung daemon can dump its threads."""
    return daemon(config, env={"PYTHONFAULTHANDLER": "1", **(env or {})})


def stop_daemon(proc: Daemon, timeout: float = 30) -> int:
    """SIGTERM and wait; if the daemon ignores it, SIGABRT it (faulthandler dumps every thread) and fail."""
    try:
        return proc.stop(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.proc.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.proc.wait(10)
        time.sleep(0.5)
        raise AssertionError(
            f"the daemon did not exit within {timeout}s of SIGTERM; its threads (faulthandler):\n{proc.output[-8000:]}"
        ) from None
